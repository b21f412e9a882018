// SPDX-License-Identifier: Apache-2.0
// Talks to warrend's metrics endpoint the way Prometheus and a load
// balancer do: plain HTTP GET, and the text exposition parsed into samples.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace warren::test {

struct HttpResponse {
  int status = 0;  // 0: no connection
  std::string body;
};

// GET http://127.0.0.1:<port><path>, one request per connection.
HttpResponse httpGet(int port, const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago.
int freePort();

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

class Scrape {
 public:
  // Parses the text exposition format; throws std::runtime_error on a line
  // it cannot read.
  explicit Scrape(const std::string& exposition);
  static Scrape of(int port);

  // The value of the one sample named `name` whose labels include `labels`;
  // nullopt when there is none (or more than one).
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
};

}  // namespace warren::test
