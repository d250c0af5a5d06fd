#pragma once
// DeepSeek tool calls in generated text -> OpenAI tool_calls, as a pure streaming parser.
//
// Two formats, both between <｜tool▁calls▁begin｜> and <｜tool▁calls▁end｜>:
//   V3 / R1:  <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{ARGS}\n```<｜tool▁call▁end｜>
//   V3.1:     <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{ARGS}<｜tool▁call▁end｜>
//   V3.2 (DSML, encoding_dsv32.py):  \n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="NAME">\n
//             <｜DSML｜parameter name="K" string="true|false">VALUE</｜DSML｜parameter>\n ...
//             </｜DSML｜invoke>\n ... </｜DSML｜function_calls>
//             (string="true": VALUE is the string itself; "false": VALUE is JSON); the calls of
//             a DSML block are emitted when the block closes, their arguments a JSON object
//             written as DeepSeek's decoder writes it.
// Several calls may follow each other (whitespace between them is dropped). A call is
// emitted once its <｜tool▁call▁end｜> arrives, with its whole arguments. Text that does not
// make a well-formed call (no separator, no name, arguments that are not a JSON object, an
// unfinished call at the end) is returned as content, markers included: never an error.
//
// For streaming, the same calls also come as pieces while they are generated: a call's first
// piece (its name) once the name is complete, then its arguments as they arrive (trimmed as the
// whole call's are, the closing markup held back), the rest when the call ends. The pieces of
// a well-formed call join to its `arguments`. A call found malformed after pieces of it went out
// keeps those pieces (a stream cannot take them back) and its text is content as above; DSML
// calls come whole, as one piece each, when their block closes.

#include <string>
#include <vector>

namespace dsv3::server {

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON object text, as the model wrote it (trimmed)
};

// A piece of a call being generated: `call` counts the calls that had pieces before it.
struct ToolCallPiece {
  size_t call = 0;
  bool opens = false;     // the call's first piece: `name` is set
  std::string name;
  std::string arguments;  // the next bytes of its arguments (may be empty)
};

struct ToolCallDelta {
  std::string content;
  std::vector<ParsedToolCall> calls;  // calls completed in this delta
  std::vector<ToolCallPiece> pieces;  // the same calls (and open ones) as stream pieces
};

class ToolCallParser {
 public:
  ToolCallDelta push(const std::string& piece);
  ToolCallDelta flush();  // end of generation

 private:
  ToolCallDelta route(bool final);
  // Pieces of the call being written (`text` from its <｜tool▁call▁begin｜> on, unfinished).
  void stream_open_call(const std::string& text, ToolCallDelta& out);
  // The call being written ended: well formed (`call`) or not (null).
  void end_call(const ParsedToolCall* call, ToolCallDelta& out);
  bool in_calls_ = false;
  size_t pieces_calls_ = 0;   // calls that had pieces
  bool streaming_ = false;    // the call being written had its first piece
  size_t streamed_ = 0;       // bytes of its arguments sent in pieces
  bool in_dsml_ = false;  // inside a DSML block (held_ starts after its opening tag)
  std::string held_;
};

// One call's text between <｜tool▁call▁begin｜> and <｜tool▁call▁end｜>, in either format;
// false when it is not a well-formed call.
bool parse_tool_call_body(const std::string& body, ParsedToolCall* out);

// The calls of one DSML block, given the text between <｜DSML｜function_calls> and
// </｜DSML｜function_calls>; false when it is not well formed (no call, a duplicate
// parameter, a parameter that is not JSON where string="false", ...).
bool parse_dsml_block(const std::string& body, std::vector<ParsedToolCall>* out);

// The five markers of the formats (special tokens in DeepSeek's tokenizers).
const std::vector<std::string>& tool_call_markers();

}  // namespace dsv3::server
