#include "plugin_library.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

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

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

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
