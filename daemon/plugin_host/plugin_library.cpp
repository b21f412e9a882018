// SPDX-License-Identifier: Apache-2.0
#include "plugin_library.h"

#include <dlfcn.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace warren {
namespace {

// What every ABI major keeps first: struct_size, abi_major, abi_minor.
constexpr std::size_t kVersionedHeaderSize =
    offsetof(warren_plugin, abi_minor) + sizeof(warren_plugin::abi_minor);
// The smallest descriptor an ABI-1 plugin can export: everything up to and
// including `destroy` (ABI 1.0). Later minors only append.
constexpr std::size_t kMinDescriptorSize =
    offsetof(warren_plugin, destroy) + sizeof(warren_plugin::destroy);

// The highest future ABI major probed for when warren_plugin_v1 is absent.
constexpr int kMaxProbedMajor = 9;

struct DlCloser {
  void operator()(void* handle) const noexcept { ::dlclose(handle); }
};
using DlHandle = std::unique_ptr<void, DlCloser>;

// Built by appending: `"'" + path.string() + "'"` trips GCC 12's -Wrestrict
// false positive at -O3 (GCC bug 105329).
std::string quoted(const std::filesystem::path& path) {
  std::string text = "'";
  text += path.string();
  text += '\'';
  return text;
}

std::string lastDlError() {
  const char* text = ::dlerror();
  return text != nullptr ? std::string(text) : std::string("unknown dlopen error");
}

// What most likely went wrong, judged from glibc's dlerror() text.
std::string dlopenHint(std::string_view error, std::string_view opened) {
  auto has = [&](std::string_view part) { return error.find(part) != std::string_view::npos; };
  if (has("invalid ELF header") || has("file too short") || has("not an ELF")) {
    return "it is not a shared object (a plugin is built as a shared library, e.g. a CMake "
           "MODULE library)";
  }
  if (has("wrong ELF class") || has("ELF file data encoding") || has("ELF file OS ABI") ||
      has("machine") || has("ELF file version")) {
    return "it was built for another architecture; rebuild it for this machine";
  }
  if (has("cannot open shared object file")) {
    const std::string own_prefix = std::string(opened) + ": cannot open shared object file";
    if (error.substr(0, own_prefix.size()) == own_prefix) {
      return "warrend cannot read the file; check its permissions";
    }
    return "a library it depends on is missing; run ldd on it to see which";
  }
  if (has("undefined symbol")) {
    return "it needs a symbol no loaded library provides (a missing or mismatched dependency); "
           "run ldd -r on it";
  }
  return "it is likely not a shared object, built for another architecture, or missing a "
         "dependency (run ldd on it)";
}

// --- who may change the code warrend runs -----------------------------------

// More symlinks than this on the way to a plugin is a loop (the kernel's own
// limit, MAXSYMLINKS, is 40).
constexpr std::size_t kMaxSymlinkHops = 40;

std::string userName(uid_t uid) {
  std::vector<char> buffer(16384);
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return "uid " + std::to_string(uid);
}

std::string groupName(gid_t gid) {
  std::vector<char> buffer(16384);
  struct group entry {};
  struct group* found = nullptr;
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return found->gr_name;
  }
  return "gid " + std::to_string(gid);
}

std::string octalMode(mode_t mode) {
  std::array<char, 8> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(),
                                 static_cast<unsigned>(mode & 07777), 8)
                       .ptr;
  std::string text(digits.data(), end);
  return std::string(text.size() < 4 ? 4 - text.size() : 0, '0') + text;
}

// What an unsafe file or folder lets someone else do, for the message.
enum class Exposure {
  kPluginFile,  // change the plugin's code
  kFolder,      // replace the plugin with another file
  kLinkFolder,  // point a symlink on the way to the plugin elsewhere
};

std::string consequence(Exposure exposure) {
  switch (exposure) {
    case Exposure::kPluginFile:
      return "change it";
    case Exposure::kFolder:
      return "replace the plugin";
    case Exposure::kLinkFolder:
      return "replace the symlink";
  }
  return "change it";
}

// Why `target` (described by `subject`, "plugin 'x' is in folder 'y', which")
// lets someone other than root or warrend's own user choose the code warrend
// runs, or nullopt when it does not. Follows no symlink: `target` is real.
std::optional<std::string> unsafeBecause(const std::filesystem::path& target,
                                         const std::string& subject, Exposure exposure) {
  struct stat status {};
  if (::lstat(target.c_str(), &status) != 0) {
    return subject +
           " cannot be examined: " + std::error_code(errno, std::generic_category()).message();
  }
  const uid_t self = ::geteuid();
  const std::string runs_as = "run their own code as warrend (user '" + userName(self) + "')";
  if (status.st_uid != 0 && status.st_uid != self) {
    const std::string allowed =
        self == 0 ? "root" : "root or by warrend's user '" + userName(self) + "'";
    return subject + " is owned by user '" + userName(status.st_uid) + "' (uid " +
           std::to_string(status.st_uid) + "), not by " + allowed + ": that user could " +
           consequence(exposure) + " and " + runs_as + "; chown root " + quoted(target);
  }
  const bool by_group = (status.st_mode & S_IWGRP) != 0;
  const bool by_others = (status.st_mode & S_IWOTH) != 0;
  if (!by_group && !by_others) return std::nullopt;
  const std::string mode = " (mode " + octalMode(status.st_mode) + ")";
  std::string writers = "is writable by everyone";
  std::string who = "anyone";
  std::string fix;
  if (by_group && by_others) {
    writers = "is writable by group '" + groupName(status.st_gid) + "' and by everyone";
    fix = "chmod go-w " + quoted(target);
  } else if (by_group) {
    writers = "is writable by group '" + groupName(status.st_gid) + "'";
    who = "anyone in that group";
    fix = "chmod g-w " + quoted(target);
  } else {
    fix = "chmod o-w " + quoted(target);
  }
  if (by_others && S_ISDIR(status.st_mode) && (status.st_mode & S_ISVTX) != 0) {
    // A shared folder like /tmp: it is meant to stay writable by everyone.
    fix =
        "move the plugin into a folder only root can write (a shared folder is no place for "
        "code warrend runs)";
  }
  return subject + " " + writers + mode + ": " + who + " could " + consequence(exposure) + " and " +
         runs_as + "; " + fix;
}

// Refuses a plugin that someone other than root or warrend's own user could
// change, or swap for another file, before dlopen() runs any of its code:
// the real file (symlinks resolved), the folder it is in, and the folder of
// every symlink on the way. The folders above those are not examined.
void refuseUnsafePlugin(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const fs::path named = fs::absolute(path).lexically_normal();
  std::vector<fs::path> links;
  fs::path current = named;
  for (;;) {
    struct stat status {};
    if (::lstat(current.c_str(), &status) != 0 || !S_ISLNK(status.st_mode)) break;
    if (links.size() == kMaxSymlinkHops) {
      throw PluginError("plugin " + quoted(named) + " leads through more than " +
                        std::to_string(kMaxSymlinkHops) +
                        " symlinks (a loop?); point it at the file");
    }
    links.push_back(current);
    const fs::path target = fs::read_symlink(current);
    current = target.is_absolute() ? target : current.parent_path() / target;
  }
  std::error_code resolve_error;
  const fs::path real = fs::canonical(named, resolve_error);
  if (resolve_error) {
    throw PluginError("plugin " + quoted(named) + " cannot be resolved: " +
                      resolve_error.message() + "; check the symlinks on the way to it");
  }

  // Each subject reads on with " is owned by ..." or " is writable by ...".
  const std::string plugin = "plugin " + quoted(named);
  const std::string file =
      real == named ? plugin : plugin + " resolves to " + quoted(real) + ", which";
  struct stat status {};
  if (::stat(real.c_str(), &status) == 0 && !S_ISREG(status.st_mode)) {
    throw PluginError(file + " is not a regular file; a plugin is a shared object file");
  }
  if (auto why = unsafeBecause(real, file, Exposure::kPluginFile)) throw PluginError(*why);

  const fs::path folder = real.parent_path();
  const std::string in_folder =
      real == named ? plugin + " is in folder " + quoted(folder) + ", which"
                    : plugin + " resolves to " + quoted(real) + ", whose folder " + quoted(folder);
  if (auto why = unsafeBecause(folder, in_folder, Exposure::kFolder)) throw PluginError(*why);

  for (const fs::path& link : links) {
    const fs::path link_folder = fs::canonical(link.parent_path(), resolve_error);
    if (resolve_error) {
      throw PluginError("plugin " + quoted(named) + ": the folder of symlink " + quoted(link) +
                        " cannot be resolved: " + resolve_error.message());
    }
    const std::string through =
        (link == named ? plugin + " is a symlink in folder "
                       : plugin + " leads through the symlink " + quoted(link) + " in folder ") +
        quoted(link_folder) + ", which";
    if (auto why = unsafeBecause(link_folder, through, Exposure::kLinkFolder)) {
      throw PluginError(*why);
    }
  }
}

std::string rebuildAdvice(int plugin_major) {
  return "rebuild the plugin against this warrend's include/warren/plugin.h (or install a "
         "warrend for ABI " +
         std::to_string(plugin_major) + ")";
}

warren_plugin_entry_fn findEntry(void* handle, const char* symbol) noexcept {
  void* address = ::dlsym(handle, symbol);
  if (address == nullptr) return nullptr;
  // POSIX guarantees a dlsym() result for a function converts to a function pointer.
  return reinterpret_cast<warren_plugin_entry_fn>(address);
}

}  // namespace

std::optional<FileIdentity> FileIdentity::of(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  constexpr std::int64_t kNsPerSecond = 1'000'000'000;
  return FileIdentity{status.st_dev, status.st_ino, status.st_size,
                      std::int64_t{status.st_mtim.tv_sec} * kNsPerSecond + status.st_mtim.tv_nsec};
}

std::shared_ptr<const PluginLibrary> PluginLibrary::load(const std::filesystem::path& path,
                                                         const std::string& load_name) {
  std::error_code status_error;
  if (std::filesystem::status(path, status_error).type() == std::filesystem::file_type::not_found) {
    throw PluginError("plugin file " + quoted(path) +
                      " does not exist; check plugins.dir and the queue's handler name");
  }

  // dlopen() runs the plugin's constructors: whoever can write the file
  // chooses code warrend runs, so only root and warrend's own user may.
  refuseUnsafePlugin(path);

  // A bare file name would make dlopen() search the library path, not the
  // current directory.
  std::string opened = load_name;
  if (opened.empty()) {
    opened = path.has_parent_path() ? path.string() : (std::filesystem::path(".") / path).string();
  }
  // Taken before dlopen(): a file replaced in between is seen as changed at
  // the next reload, never the other way round.
  const FileIdentity identity = FileIdentity::of(path).value_or(FileIdentity{});
  ::dlerror();
  DlHandle handle(::dlopen(opened.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!handle) {
    const std::string error = lastDlError();
    throw PluginError("cannot load plugin " + quoted(path) + ": " + error + "; " +
                      dlopenHint(error, opened));
  }

  const warren_plugin_entry_fn entry = findEntry(handle.get(), WARREN_PLUGIN_ENTRY_SYMBOL);
  if (entry == nullptr) {
    for (int major = WARREN_PLUGIN_ABI_MAJOR + 1; major <= kMaxProbedMajor; ++major) {
      const std::string symbol = "warren_plugin_v" + std::to_string(major);
      if (findEntry(handle.get(), symbol.c_str()) != nullptr) {
        throw PluginError(quoted(path) + " is a warren plugin for ABI major " +
                          std::to_string(major) + ", but this warrend speaks ABI major " +
                          std::to_string(WARREN_PLUGIN_ABI_MAJOR) + ": " + rebuildAdvice(major));
      }
    }
    throw PluginError(quoted(path) +
                      " is not a warren plugin: it exports no " WARREN_PLUGIN_ENTRY_SYMBOL
                      " symbol (define it with WARREN_PLUGIN(...) or export 'const "
                      "warren_plugin* " WARREN_PLUGIN_ENTRY_SYMBOL "(void)')");
  }

  const warren_plugin* descriptor = entry();
  if (descriptor == nullptr) {
    throw PluginError(quoted(path) +
                      ": " WARREN_PLUGIN_ENTRY_SYMBOL
                      "() returned NULL instead of its descriptor; the plugin is broken");
  }
  // struct_size says how much of the descriptor exists: no other field is
  // read before it has been checked to be there.
  const auto truncated = [&](std::size_t struct_size) {
    return PluginError(quoted(path) + " has a truncated descriptor: struct_size is " +
                       std::to_string(struct_size) + " bytes, ABI " +
                       std::to_string(WARREN_PLUGIN_ABI_MAJOR) + ".0 needs at least " +
                       std::to_string(kMinDescriptorSize) +
                       "; set it to sizeof(warren_plugin) (WARREN_PLUGIN(...) does)");
  };
  if (descriptor->struct_size < kVersionedHeaderSize) throw truncated(descriptor->struct_size);
  if (descriptor->abi_major != WARREN_PLUGIN_ABI_MAJOR) {
    throw PluginError(
        quoted(path) + " exports " WARREN_PLUGIN_ENTRY_SYMBOL " but its descriptor says ABI " +
        std::to_string(descriptor->abi_major) + "." + std::to_string(descriptor->abi_minor) +
        ", and this warrend speaks ABI major " + std::to_string(WARREN_PLUGIN_ABI_MAJOR) + ": " +
        rebuildAdvice(descriptor->abi_major));
  }
  if (descriptor->struct_size < kMinDescriptorSize) throw truncated(descriptor->struct_size);
  std::string missing;
  auto require = [&](bool present, const char* field) {
    if (!present) missing += (missing.empty() ? "" : ", ") + std::string(field);
  };
  require(descriptor->name != nullptr, "name");
  require(descriptor->version != nullptr, "version");
  require(descriptor->create != nullptr, "create");
  require(descriptor->handle != nullptr, "handle");
  require(descriptor->destroy != nullptr, "destroy");
  if (!missing.empty()) {
    throw PluginError(quoted(path) + " has an incomplete descriptor: " + missing +
                      " is NULL; every plugin must set name, version, create, handle and "
                      "destroy");
  }

  std::unique_ptr<PluginLibrary> library(
      new PluginLibrary(handle.get(), descriptor, path, identity));
  static_cast<void>(handle.release());  // ownership moved into `library`
  return library;
}

PluginLibrary::PluginLibrary(void* handle, const warren_plugin* descriptor,
                             std::filesystem::path path, FileIdentity identity)
    : handle_(handle),
      descriptor_(descriptor),
      path_(std::move(path)),
      identity_(identity),
      name_(descriptor->name),
      version_(descriptor->version) {}

PluginLibrary::~PluginLibrary() { ::dlclose(handle_); }

}  // namespace warren
