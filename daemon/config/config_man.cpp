// SPDX-License-Identifier: Apache-2.0
#include "config_man.h"

#include "config_schema.h"

namespace warren {
namespace {

// `text` safe inside a roff line: backslashes escaped, and a leading `.` or
// `'` (a request) defused.
std::string escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
  return out;
}

// Inside a literal (code) span, a `-` is a minus sign, as on a command line.
std::string literal(std::string_view text) {
  std::string out;
  for (const char c : escaped(text)) {
    if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  return out;
}

// The schema's descriptions mark literals as `code`: bold in the page.
std::string prose(std::string_view text) {
  std::string out;
  std::size_t from = 0;
  while (from < text.size()) {
    const std::size_t open = text.find('`', from);
    const std::size_t close = open == std::string_view::npos ? open : text.find('`', open + 1);
    if (close == std::string_view::npos) {
      out += escaped(text.substr(from));
      break;
    }
    out += escaped(text.substr(from, open - from));
    out += "\\fB" + literal(text.substr(open + 1, close - open - 1)) + "\\fR";
    from = close + 1;
  }
  // A line of prose must not start with a request either.
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
  return out;
}

std::string sectionTitle(std::string_view path) {
  if (path.empty()) return "The top level";
  if (path == "queues[]") return "Each item of queues";
  if (path == "queues[].dead_letter") return "dead_letter, in an item of queues";
  return std::string(path);
}

std::string keyEntry(const SectionSpec& section, const KeySpec& key) {
  std::string facts = std::string(typeName(key.type));
  if (key.required) {
    facts += ", required";
  } else if (key.default_text != nullptr && !key.default_text().empty()) {
    facts += ", default \\fB" + literal(key.default_text()) + "\\fR";
  }
  const std::string bounds = boundsText(key);
  if (!bounds.empty()) facts += ", " + prose(bounds);
  return ".TP\n.B " + literal(std::string(section.doc_prefix) + std::string(key.name)) + "\n(" +
         facts + ")\n" + prose(key.description) + "\n";
}

}  // namespace

std::string renderConfigManPage(std::string_view version, std::string_view example) {
  std::string page =
      ".\\\" Generated from daemon/config/config_schema.cpp by config_doc --man; do not edit.\n"
      ".TH WARREN.YAML 5 \"\" \"warren " +
      escaped(version) +
      "\" \"File Formats\"\n"
      ".SH NAME\n"
      "warren.yaml \\- configuration file of warrend, the warren RPC daemon\n"
      ".SH SYNOPSIS\n"
      ".B /etc/warren/warren.yaml\n"
      ".SH DESCRIPTION\n"
      "\\fBwarrend\\fR(8) reads one YAML file that maps RabbitMQ queues to handler plugins,\n"
      "or to programs (\\fBhandler: exec\\fR).\n"
      "The whole file is validated when warrend starts and on every reload\n"
      "(\\fBSIGHUP\\fR): every problem is reported, one line each as\n"
      "\\fIFILE\\fB:\\fILINE\\fB:\\fICOLUMN\\fB: \\fIKEY\\fB: \\fIPROBLEM\\fR, and warrend does "
      "not\n"
      "start (exit status 78), or keeps its running configuration.\n"
      "\\fBwarrend \\-\\-check\\-config \\fIFILE\\fR runs the same validation.\n"
      ".PP\n"
      "Unknown keys are errors at every level, as is the same key twice in one map.\n"
      "Null values are never accepted: leave a key out to get its default.\n"
      ".SH VALUE TYPES\n"
      ".TP\n.B string\nany YAML scalar, quoted or not.\n"
      ".TP\n.B integer\na plain decimal integer (\\fB5\\fR, \\fB\\-3\\fR); not \\fB5.0\\fR, "
      "\\fB\"5\"\\fR or \\fB0x10\\fR.\n"
      ".TP\n.B size\nan integer count of bytes.\n"
      ".TP\n.B bool\n\\fBtrue\\fR or \\fBfalse\\fR; not \\fByes\\fR, \\fBon\\fR or "
      "\\fB\"true\"\\fR.\n"
      ".TP\n.B duration\na non-negative number with a unit, \\fBms\\fR, \\fBs\\fR, \\fBm\\fR or "
      "\\fBh\\fR: \\fB250ms\\fR, \\fB10s\\fR, \\fB1.5s\\fR, \\fB2m\\fR; a whole number of\n"
      "milliseconds, no sign, no compound forms (\\fB90m\\fR, not \\fB1h30m\\fR).\n"
      ".TP\n.B map, sequence\na YAML mapping, a YAML sequence.\n"
      ".SH KEYS\n"
      "Bounds are inclusive; a string's are its length in bytes.\n";
  for (const SectionSpec& section : configSchema()) {
    page += ".SS \"" + escaped(sectionTitle(section.path)) + "\"\n";
    for (const KeySpec& key : section.keys) page += keyEntry(section, key);
  }
  page += ".SH EXAMPLE\n.EX\n";
  std::size_t from = 0;
  while (from < example.size()) {
    std::size_t end = example.find('\n', from);
    if (end == std::string_view::npos) end = example.size();
    // Every line starts with \&: a `.` or `'` is no request, and an empty
    // line is no blank input line.
    const std::string line = escaped(example.substr(from, end - from));
    page += (line.rfind("\\&", 0) == 0 ? line : "\\&" + line) + "\n";
    from = end + 1;
  }
  page +=
      ".EE\n"
      ".SH SEE ALSO\n"
      "\\fBwarrend\\fR(8), \\fBwarren\\-call\\fR(1),\n"
      "/usr/share/doc/warren/configuration.md (the same keys, with examples and the reload "
      "rules),\n"
      "/usr/share/doc/warren/operations.md\n";
  return page;
}

}  // namespace warren
