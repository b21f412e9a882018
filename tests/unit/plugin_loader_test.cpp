// SPDX-License-Identifier: Apache-2.0
// PluginLibrary / PluginInstance against real shared objects: the sum plugin
// and one fixture per loader failure mode (tests/fixtures/plugins).
#include "handler_reply.h"
#include "plugin_instance.h"
#include "plugin_library.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace warren {
namespace {

namespace fs = std::filesystem;
using Options = std::vector<std::pair<std::string, std::string>>;

fs::path fixture(std::string_view name) {
  return fs::path(WARREN_FIXTURE_PLUGIN_DIR) / (std::string(name) + ".so");
}
fs::path sumPath() { return fs::path(WARREN_PLUGIN_DIR) / "sum.so"; }

::testing::AssertionResult contains(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not in: " << text;
}

// The PluginError message load() throws, or "" when it loads.
std::string loadError(const fs::path& path) {
  try {
    PluginLibrary::load(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "";
}

// A logger whose lines the test can read back; not registered globally.
struct CapturingLogger {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  std::shared_ptr<spdlog::logger> logger = makeLogger(sink);

  static std::shared_ptr<spdlog::logger> makeLogger(spdlog::sink_ptr s) {
    auto made = std::make_shared<spdlog::logger>("plugin_loader_test", std::move(s));
    made->set_level(spdlog::level::trace);
    return made;
  }
  // True when a line at `level` with exactly `payload` was logged.
  bool saw(spdlog::level::level_enum level, std::string_view payload) const {
    for (const auto& line : sink->last_raw()) {
      if (line.level == level &&
          std::string_view(line.payload.data(), line.payload.size()) == payload) {
        return true;
      }
    }
    return false;
  }
};

warren_request requestWith(std::string_view body) {
  warren_request request{};
  request.body = {body.data(), body.size()};
  return request;
}

HandlerReply run(const PluginInstance& instance, std::string_view body) {
  HandlerReply reply;
  instance.handle(requestWith(body), reply);
  return reply;
}

std::unique_ptr<PluginInstance> makeInstance(const fs::path& path, const Options& options = {},
                                             std::shared_ptr<spdlog::logger> logger = nullptr) {
  if (!logger) logger = CapturingLogger().logger;
  return std::make_unique<PluginInstance>(PluginLibrary::load(path), "test-queue", options,
                                          std::move(logger));
}

// --- the loader's failure modes ---------------------------------------------

TEST(PluginLibraryTest, MissingFileSaysWhereToLook) {
  const fs::path path = fixture("does_not_exist");
  const std::string error = loadError(path);
  EXPECT_EQ(error, "plugin file '" + path.string() +
                       "' does not exist; check plugins.dir and the queue's handler name");
}

TEST(PluginLibraryTest, NotAnElfFileIsRefusedWithTheCause) {
  const fs::path path = fixture("not_elf");
  ASSERT_TRUE(fs::exists(path));
  const std::string error = loadError(path);
  EXPECT_TRUE(contains(error, "cannot load plugin '" + path.string() + "': "));
  EXPECT_TRUE(contains(error, "not a shared object"));
}

TEST(PluginLibraryTest, SharedObjectWithoutEntryIsNotAPlugin) {
  const fs::path path = fixture("no_entry");
  EXPECT_EQ(loadError(path),
            "'" + path.string() +
                "' is not a warren plugin: it exports no warren_plugin_v1 symbol (define it with "
                "WARREN_PLUGIN(...) or export 'const warren_plugin* warren_plugin_v1(void)')");
}

TEST(PluginLibraryTest, FutureAbiSymbolNamesBothVersions) {
  const fs::path path = fixture("wrong_abi_symbol");
  EXPECT_EQ(loadError(path),
            "'" + path.string() +
                "' is a warren plugin for ABI major 2, but this warrend speaks ABI major 1: "
                "rebuild the plugin against this warrend's include/warren/plugin.h (or install a "
                "warrend for ABI 2)");
}

TEST(PluginLibraryTest, DescriptorAbiMajorMismatchNamesBothVersions) {
  const fs::path path = fixture("wrong_abi_field");
  const std::string error = loadError(path);
  EXPECT_TRUE(contains(error, "'" + path.string() + "'"));
  EXPECT_TRUE(contains(error, "descriptor says ABI 2.3"));
  EXPECT_TRUE(contains(error, "this warrend speaks ABI major 1"));
  EXPECT_TRUE(contains(error, "rebuild the plugin against this warrend's include/warren/plugin.h"));
}

// The fixture's descriptor ends right after struct_size, at an unreadable
// page: reading abi_major (or anything else) first would crash the test.
TEST(PluginLibraryTest, TinyDescriptorIsRefusedBeforeAnyOtherFieldIsRead) {
  const fs::path path = fixture("tiny_descriptor");
  const std::size_t needed = offsetof(warren_plugin, destroy) + sizeof(warren_plugin::destroy);
  EXPECT_EQ(loadError(path), "'" + path.string() + "' has a truncated descriptor: struct_size is " +
                                 std::to_string(sizeof(std::size_t)) +
                                 " bytes, ABI 1.0 needs at least " + std::to_string(needed) +
                                 "; set it to sizeof(warren_plugin) (WARREN_PLUGIN(...) does)");
}

// --- who may change a plugin -------------------------------------------------

// A private folder (mkdtemp: 0700, ours) the test copies plugins into and
// sets modes on; removed on scope exit.
class PluginFolder {
 public:
  PluginFolder() {
    std::string pattern = (fs::temp_directory_path() / "warren-perm-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::generic_category());
    dir_ = fs::canonical(pattern);
  }
  ~PluginFolder() {
    std::error_code ignored;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ignored);
    fs::remove_all(dir_, ignored);
  }
  PluginFolder(const PluginFolder&) = delete;
  PluginFolder& operator=(const PluginFolder&) = delete;

  const fs::path& path() const { return dir_; }
  // A copy of the sum plugin named `name`, with `mode` (chmod, not umask).
  fs::path copySum(const std::string& name, mode_t mode = 0755) const {
    const fs::path copy = dir_ / name;
    fs::copy_file(sumPath(), copy, fs::copy_options::overwrite_existing);
    chmodOrThrow(copy, mode);
    return copy;
  }
  fs::path subfolder(const std::string& name, mode_t mode = 0755) const {
    const fs::path folder = dir_ / name;
    fs::create_directory(folder);
    chmodOrThrow(folder, mode);
    return folder;
  }
  static void chmodOrThrow(const fs::path& path, mode_t mode) {
    if (::chmod(path.c_str(), mode) != 0) throw std::system_error(errno, std::generic_category());
  }

 private:
  fs::path dir_;
};

std::string groupOf(const fs::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return "?";
  const struct group* entry = ::getgrgid(status.st_gid);
  return entry != nullptr ? entry->gr_name : "gid " + std::to_string(status.st_gid);
}

std::string selfName() {
  const struct passwd* entry = ::getpwuid(::geteuid());
  return entry != nullptr ? entry->pw_name : "uid " + std::to_string(::geteuid());
}

std::string runsAs() { return "run their own code as warrend (user '" + selfName() + "')"; }

// Appended, not concatenated: GCC 12's -Wrestrict false positive at -O3.
std::string q(const fs::path& path) {
  std::string text = "'";
  text += path.string();
  text += '\'';
  return text;
}

TEST(PluginPermissionsTest, APluginOnlyItsOwnerCanWriteLoads) {
  const PluginFolder folder;
  const fs::path plugin = folder.copySum("sum.so", 0755);
  EXPECT_EQ(loadError(plugin), "");
  PluginFolder::chmodOrThrow(plugin, 0600);
  EXPECT_EQ(loadError(plugin), "");
}

TEST(PluginPermissionsTest, AGroupWritableFileIsRefused) {
  const PluginFolder folder;
  const fs::path plugin = folder.copySum("sum.so", 0664);
  EXPECT_EQ(loadError(plugin), "plugin " + q(plugin) + " is writable by group '" + groupOf(plugin) +
                                   "' (mode 0664): anyone in that group could change it and " +
                                   runsAs() + "; chmod g-w " + q(plugin));
}

TEST(PluginPermissionsTest, AWorldWritableFileIsRefused) {
  const PluginFolder folder;
  const fs::path plugin = folder.copySum("sum.so", 0646);
  EXPECT_EQ(loadError(plugin), "plugin " + q(plugin) +
                                   " is writable by everyone (mode 0646): anyone could change it "
                                   "and " +
                                   runsAs() + "; chmod o-w " + q(plugin));
}

TEST(PluginPermissionsTest, ASymlinkToAWorldWritableFileIsRefusedNamingTheRealFile) {
  const PluginFolder folder;
  const fs::path real = folder.subfolder("elsewhere") / "real-sum.so";
  fs::copy_file(sumPath(), real);
  PluginFolder::chmodOrThrow(real, 0666);
  const fs::path link = folder.path() / "sum.so";
  fs::create_symlink(real, link);
  EXPECT_EQ(loadError(link), "plugin " + q(link) + " resolves to " + q(real) +
                                 ", which is writable by group '" + groupOf(real) +
                                 "' and by everyone (mode 0666): anyone could change it and " +
                                 runsAs() + "; chmod go-w " + q(real));
  // Fixed where it says, the same symlink loads.
  PluginFolder::chmodOrThrow(real, 0644);
  EXPECT_EQ(loadError(link), "");
}

TEST(PluginPermissionsTest, AWritableFolderIsRefused) {
  const PluginFolder folder;
  const fs::path plugins = folder.subfolder("plugins", 0777);
  const fs::path plugin = plugins / "sum.so";
  fs::copy_file(sumPath(), plugin);
  PluginFolder::chmodOrThrow(plugin, 0755);
  EXPECT_EQ(loadError(plugin), "plugin " + q(plugin) + " is in folder " + q(plugins) +
                                   ", which is writable by group '" + groupOf(plugins) +
                                   "' and by everyone (mode 0777): anyone could replace the "
                                   "plugin and " +
                                   runsAs() + "; chmod go-w " + q(plugins));
  PluginFolder::chmodOrThrow(plugins, 0775);
  EXPECT_EQ(loadError(plugin), "plugin " + q(plugin) + " is in folder " + q(plugins) +
                                   ", which is writable by group '" + groupOf(plugins) +
                                   "' (mode 0775): anyone in that group could replace the "
                                   "plugin and " +
                                   runsAs() + "; chmod g-w " + q(plugins));
  PluginFolder::chmodOrThrow(plugins, 0755);
  EXPECT_EQ(loadError(plugin), "");
}

// /tmp and its kind: sticky and writable by everyone, meant to stay so.
TEST(PluginPermissionsTest, ASharedStickyFolderIsRefusedWithoutAdvisingChmod) {
  const PluginFolder folder;
  const fs::path shared = folder.subfolder("shared", 01777);
  const fs::path plugin = shared / "sum.so";
  fs::copy_file(sumPath(), plugin);
  PluginFolder::chmodOrThrow(plugin, 0755);
  EXPECT_EQ(loadError(plugin), "plugin " + q(plugin) + " is in folder " + q(shared) +
                                   ", which is writable by group '" + groupOf(shared) +
                                   "' and by everyone (mode 1777): anyone could replace the "
                                   "plugin and " +
                                   runsAs() +
                                   "; move the plugin into a folder only root can write (a shared "
                                   "folder is no place for code warrend runs)");
}

// A safe file behind a symlink in a writable folder: the symlink can be
// pointed elsewhere.
TEST(PluginPermissionsTest, ASymlinkInAWritableFolderIsRefused) {
  const PluginFolder folder;
  const fs::path real = folder.copySum("real-sum.so", 0755);
  const fs::path plugins = folder.subfolder("plugins", 0757);
  const fs::path link = plugins / "sum.so";
  fs::create_symlink(real, link);
  const std::string problem =
      "(mode 0757): anyone could replace the symlink and " + runsAs() + "; chmod o-w " + q(plugins);
  EXPECT_EQ(loadError(link), "plugin " + q(link) + " is a symlink in folder " + q(plugins) +
                                 ", which is writable by everyone " + problem);
  // Further along a chain of symlinks, too.
  const fs::path first = folder.path() / "first.so";
  fs::create_symlink(link, first);
  EXPECT_EQ(loadError(first), "plugin " + q(first) + " leads through the symlink " + q(link) +
                                  " in folder " + q(plugins) + ", which is writable by everyone " +
                                  problem);
  PluginFolder::chmodOrThrow(plugins, 0755);
  EXPECT_EQ(loadError(first), "");
}

TEST(PluginPermissionsTest, AFileOwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a file away (chown)";
  const PluginFolder folder;
  const fs::path plugin = folder.copySum("sum.so", 0755);
  constexpr uid_t kOther = 65534;  // nobody
  ASSERT_EQ(::chown(plugin.c_str(), kOther, static_cast<gid_t>(-1)), 0);
  const struct passwd* other = ::getpwuid(kOther);
  const std::string other_name = other != nullptr ? other->pw_name : "uid 65534";
  EXPECT_EQ(loadError(plugin), "plugin " + q(plugin) + " is owned by user '" + other_name +
                                   "' (uid 65534), not by root: that user could change it and " +
                                   runsAs() + "; chown root " + q(plugin));
}

TEST(PluginInstanceTest, CreateFailureCarriesKeyAndMessage) {
  CapturingLogger log;
  try {
    makeInstance(fixture("create_fails"), {{"mode", "turbo"}}, log.logger);
    FAIL() << "create() should have refused its options";
  } catch (const PluginOptionError& e) {
    EXPECT_EQ(e.key(), "mode");
    EXPECT_STREQ(e.what(), "mode must be one of: fast, slow");
  }
  // The host context is usable from inside create().
  EXPECT_TRUE(log.saw(spdlog::level::err, "[create_fails] refusing the options"));
}

// --- the C++ helper at the boundary -----------------------------------------

TEST(PluginInstanceTest, ThrownExceptionBecomesInternalError) {
  const auto instance = makeInstance(fixture("handle_throws"));
  const HandlerReply reply = run(*instance, "anything");
  ASSERT_TRUE(reply.error.has_value());
  EXPECT_EQ(reply.error->code, WARREN_ERROR_INTERNAL);
  EXPECT_EQ(reply.error->message, "boom: handler failed");
  EXPECT_EQ(reply.body, "") << "an error reply carries no body";
}

TEST(PluginInstanceTest, ThrownWarrenErrorKeepsItsCode) {
  const auto instance = makeInstance(fixture("handle_throws"));
  const HandlerReply reply = run(*instance, "typed");
  ASSERT_TRUE(reply.error.has_value());
  EXPECT_EQ(reply.error->code, WARREN_ERROR_UNAVAILABLE);
  EXPECT_EQ(reply.error->message, "backend down");
}

TEST(PluginInstanceTest, UnknownErrorCodeBecomesInternalKeepingTheMessage) {
  const auto instance = makeInstance(fixture("handle_throws"));
  const HandlerReply reply = run(*instance, "bad-code");
  ASSERT_TRUE(reply.error.has_value());
  EXPECT_EQ(reply.error->code, WARREN_ERROR_INTERNAL);
  EXPECT_EQ(reply.error->message, "made-up code");
}

TEST(PluginInstanceTest, RequestCarriesTheQueueAndLastErrorWins) {
  const auto instance = makeInstance(fixture("handle_throws"));
  const HandlerReply reply = run(*instance, "queue");
  ASSERT_TRUE(reply.error.has_value());
  EXPECT_EQ(reply.error->code, WARREN_ERROR_OUT_OF_RANGE);
  EXPECT_EQ(reply.error->message, "test-queue");
}

TEST(PluginInstanceTest, PluginLogLinesReachTheLoggerWithThePluginName) {
  CapturingLogger log;
  const auto instance = makeInstance(fixture("handle_throws"), {}, log.logger);
  EXPECT_TRUE(log.saw(spdlog::level::debug, "[handle_throws] created"));
  run(*instance, "anything");
  EXPECT_TRUE(log.saw(spdlog::level::warn, "[handle_throws] about to throw"));
}

TEST(PluginInstanceTest, ReplyIsResetBeforeEachRequest) {
  const auto instance = makeInstance(
      fixture("gate"), {{"entered_fifo", "/nonexistent/a"}, {"release_fifo", "/nonexistent/b"}});
  HandlerReply reply;
  reply.body = "stale";
  reply.content_type = "application/stale";
  reply.error = HandlerError{WARREN_ERROR_TOO_LARGE, "stale"};
  instance->handle(requestWith("echo:fresh"), reply);
  EXPECT_FALSE(reply.error.has_value());
  EXPECT_EQ(reply.body, "echo:fresh");
  EXPECT_EQ(reply.content_type, "text/plain");
}

// A caller without a sink of its own (a worker process) gets a deferred
// reply from handle() itself, once the plugin completed it, or
// deadline_exceeded at the request's deadline.
std::int64_t epochMsFromNow(std::chrono::milliseconds ahead) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             (std::chrono::system_clock::now() + ahead).time_since_epoch())
      .count();
}

TEST(PluginInstanceTest, ADeferredReplyIsWaitedForWithoutASink) {
  const auto instance = makeInstance(fixture("deferred"), {{"delay_ms", "20"}});
  warren_request request = requestWith("2,3");
  request.deadline_ms = epochMsFromNow(std::chrono::seconds(30));
  HandlerReply reply;
  instance->handle(request, reply);
  EXPECT_FALSE(reply.error.has_value());
  EXPECT_EQ(reply.body, "5");
  EXPECT_FALSE(reply.deferred);
  EXPECT_FALSE(reply.sink);
}

TEST(PluginInstanceTest, ADeferredReplyNotCompletedByTheDeadlineIsDeadlineExceeded) {
  const auto instance = makeInstance(fixture("deferred"), {{"delay_ms", "60000"}});
  warren_request request = requestWith("late");
  request.deadline_ms = epochMsFromNow(std::chrono::milliseconds(50));
  HandlerReply reply;
  instance->handle(request, reply);
  ASSERT_TRUE(reply.error.has_value());
  EXPECT_EQ(reply.error->code, WARREN_ERROR_DEADLINE_EXCEEDED);
  // The plugin completes it at destroy(): dropped, nothing to free twice.
}

TEST(PluginInstanceTest, InstanceKeepsItsLibraryLoaded) {
  auto library = PluginLibrary::load(fixture("handle_throws"));
  const PluginInstance instance(library, "q", {}, CapturingLogger().logger);
  library.reset();
  EXPECT_EQ(instance.library().name(), "handle_throws");
  EXPECT_EQ(run(instance, "typed").error->message, "backend down");
}

// --- the gate fixture used by the integration tests ---------------------------

TEST(GatePluginTest, RequiresBothFifosAndRejectsUnknownOptions) {
  try {
    makeInstance(fixture("gate"), {{"entered_fifo", "/tmp/x"}});
    FAIL() << "release_fifo is required";
  } catch (const PluginOptionError& e) {
    EXPECT_EQ(e.key(), "release_fifo");
  }
  try {
    makeInstance(fixture("gate"),
                 {{"entered_fifo", "/tmp/x"}, {"release_fifo", "/tmp/y"}, {"colour", "red"}});
    FAIL() << "unknown options are refused";
  } catch (const PluginOptionError& e) {
    EXPECT_EQ(e.key(), "colour");
  }
}

// A temporary directory holding the two FIFOs, removed on scope exit.
class FifoDir {
 public:
  FifoDir() {
    std::string pattern = (fs::temp_directory_path() / "warren-gate-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::generic_category());
    dir_ = pattern;
    for (const fs::path& fifo : {entered(), release()}) {
      if (::mkfifo(fifo.c_str(), 0600) != 0)
        throw std::system_error(errno, std::generic_category());
    }
  }
  ~FifoDir() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  FifoDir(const FifoDir&) = delete;
  FifoDir& operator=(const FifoDir&) = delete;
  fs::path entered() const { return dir_ / "entered"; }
  fs::path release() const { return dir_ / "release"; }

 private:
  fs::path dir_;
};

// Opens, transfers one byte, closes. Blocks until the other end is there.
bool transferOneByte(const fs::path& fifo, bool write) {
  int fd = -1;
  do {
    fd = ::open(fifo.c_str(), (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return false;
  char byte = 'r';
  ssize_t done = 0;
  do {
    done = write ? ::write(fd, &byte, 1) : ::read(fd, &byte, 1);
  } while (done < 0 && errno == EINTR);
  ::close(fd);
  return done == 1;
}

TEST(GatePluginTest, HoldsTheRequestUntilReleased) {
  const FifoDir fifos;
  const auto instance = makeInstance(fixture("gate"), {{"entered_fifo", fifos.entered().string()},
                                                       {"release_fifo", fifos.release().string()}});
  HandlerReply reply;
  std::thread handler([&] { instance->handle(requestWith("held"), reply); });
  const bool entered = transferOneByte(fifos.entered(), false);
  const bool released = transferOneByte(fifos.release(), true);
  handler.join();
  ASSERT_TRUE(entered);
  ASSERT_TRUE(released);
  EXPECT_FALSE(reply.error.has_value());
  EXPECT_EQ(reply.body, "held");
  EXPECT_EQ(reply.content_type, "text/plain");
}

// --- the real sum plugin ------------------------------------------------------

TEST(SumPluginTest, LoadsWithItsDescriptor) {
  const auto library = PluginLibrary::load(sumPath());
  EXPECT_EQ(library->name(), "sum");
  EXPECT_STREQ(library->descriptor().name, "sum");
  EXPECT_EQ(library->descriptor().abi_major, WARREN_PLUGIN_ABI_MAJOR);
  EXPECT_FALSE(library->version().empty());
  EXPECT_EQ(library->path(), sumPath());
}

TEST(SumPluginTest, CreatesWithoutOptions) { EXPECT_NO_THROW(makeInstance(sumPath())); }

TEST(SumPluginTest, UnknownOptionIsRefusedNamingTheKey) {
  try {
    makeInstance(sumPath(), {{"no_such_option", "1"}});
    FAIL() << "an unknown option should be refused";
  } catch (const PluginOptionError& e) {
    EXPECT_EQ(e.key(), "no_such_option");
    EXPECT_TRUE(contains(e.what(), "no_such_option"));
  }
}

TEST(SumPluginTest, AddsTwoNumbers) {
  const auto instance = makeInstance(sumPath());
  const HandlerReply reply = run(*instance, "3,4");
  ASSERT_FALSE(reply.error.has_value()) << reply.error->message;
  EXPECT_EQ(reply.body, "7");
}

TEST(SumPluginTest, MalformedBodyIsAnInvalidArgument) {
  const auto instance = makeInstance(sumPath());
  const HandlerReply reply = run(*instance, "x");
  ASSERT_TRUE(reply.error.has_value());
  EXPECT_EQ(reply.error->code, WARREN_ERROR_INVALID_ARGUMENT);
  EXPECT_FALSE(reply.error->message.empty());
}

}  // namespace
}  // namespace warren
