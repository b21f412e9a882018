// SPDX-License-Identifier: Apache-2.0
#include "http_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <limits>
#include <sstream>
#include <stdexcept>

namespace warren::test {
namespace {

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket() failed");
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// name{a="x",b="y"} value
Sample parseLine(const std::string& line) {
  Sample sample;
  std::size_t at = line.find_first_of("{ ");
  if (at == std::string::npos) throw std::runtime_error("no value in '" + line + "'");
  sample.name = line.substr(0, at);
  if (line[at] == '{') {
    ++at;
    while (line.at(at) != '}') {
      const std::size_t equals = line.find('=', at);
      const std::string key = line.substr(at, equals - at);
      if (line.at(equals + 1) != '"') throw std::runtime_error("bad label in '" + line + "'");
      std::string value;
      std::size_t i = equals + 2;
      for (; line.at(i) != '"'; ++i) {
        if (line[i] == '\\') ++i;  // \" \\ \n: the escaped character itself is enough here
        value += line.at(i);
      }
      sample.labels[key] = value;
      at = i + 1;
      if (line.at(at) == ',') ++at;
    }
    ++at;
  }
  std::istringstream rest(line.substr(at));
  std::string value;
  rest >> value;
  if (value == "+Inf") {
    sample.value = std::numeric_limits<double>::infinity();
  } else {
    sample.value = std::stod(value);
  }
  return sample;
}

}  // namespace

HttpResponse httpGet(int port, const std::string& path) {
  Socket socket;
  const sockaddr_in address = loopback(port);
  if (::connect(socket.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return {};
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(socket.fd(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return {};
  }
  std::string response;
  char buffer[8192];
  for (;;) {
    const ssize_t got = ::recv(socket.fd(), buffer, sizeof buffer, 0);
    if (got <= 0) break;
    response.append(buffer, static_cast<std::size_t>(got));
  }
  HttpResponse result;
  if (response.compare(0, 5, "HTTP/") != 0) return result;
  result.status = std::stoi(response.substr(response.find(' ') + 1, 3));
  const std::size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) result.body = response.substr(body + 4);
  // Chunked bodies: keep it simple, the test servers answer with a length.
  return result;
}

int freePort() {
  Socket socket;
  sockaddr_in address = loopback(0);
  if (::bind(socket.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("bind() failed");
  }
  socklen_t length = sizeof address;
  ::getsockname(socket.fd(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

Scrape::Scrape(const std::string& exposition) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    samples_.push_back(parseLine(line));
  }
}

Scrape Scrape::of(int port) {
  const HttpResponse response = httpGet(port, "/metrics");
  if (response.status != 200) {
    throw std::runtime_error("GET /metrics answered " + std::to_string(response.status));
  }
  return Scrape(response.body);
}

std::optional<double> Scrape::value(const std::string& name,
                                    const std::map<std::string, std::string>& labels) const {
  std::optional<double> found;
  for (const Sample& sample : samples_) {
    if (sample.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      const auto it = sample.labels.find(key);
      match = match && it != sample.labels.end() && it->second == value;
    }
    if (!match) continue;
    if (found) return std::nullopt;
    found = sample.value;
  }
  return found;
}

}  // namespace warren::test
