#pragma once
// A JSON Schema compiled into the graph the JSON matcher walks: one node per schema (sub)object,
// $ref resolved to node indices (so recursive schemas are cycles, not copies).
//
// Supported, because agents and OpenAI's strict mode use them: type (one or a list), properties,
// required, additionalProperties (true, false or a schema), items, minItems, maxItems, enum,
// const, minLength, maxLength, anyOf, $defs / definitions with "$ref": "#/$defs/NAME" (or "#"),
// and the annotations title, description, $schema, $id, $comment, examples, default, strict.
// Any other keyword is an error naming its JSON path: a schema the matcher cannot enforce is
// refused rather than silently loosened.
//
// Limits (errors, not truncation): at most 64 properties per object and 64 values per enum (the
// matcher tracks them in 64-bit sets), 4096 nodes, 32 levels of schema nesting.

#include <cstdint>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace dsv3::grammar {

// The JSON types a node admits, as bits.
enum TypeBits : uint8_t {
  kObject = 1,
  kArray = 2,
  kString = 4,
  kNumber = 8,   // any number (integers included)
  kInteger = 16,  // integers only (no fraction, no exponent)
  kBoolean = 32,
  kNull = 64,
  kAnyType = 127,
};

struct SchemaProperty {
  std::string key;  // the key as it is written between the quotes (JSON-escaped)
  int node = 0;
  bool required = false;
};

struct SchemaNode {
  uint8_t types = kAnyType;
  // enum / const: the value is one of these texts (compact JSON); -1 when unrestricted.
  int literal_set = -1;
  // anyOf: the value matches one of these nodes (the node's other fields are unused).
  std::vector<int> any_of;
  // object
  std::vector<SchemaProperty> properties;
  int additional = 0;  // node of the properties not listed; kNoNode: none allowed
  uint64_t required_mask = 0;
  // array
  int items = 0;
  int64_t min_items = 0, max_items = -1;  // -1: no maximum
  // string (code points)
  int64_t min_length = 0, max_length = -1;
};

constexpr int kNoNode = -1;
// Node 0 of every schema admits any JSON value; literal sets 0 and 1 are {true, false} and
// {null}.
constexpr int kAnyNode = 0;
constexpr int kBooleanLiterals = 0;
constexpr int kNullLiterals = 1;

struct Schema {
  std::vector<SchemaNode> nodes;
  std::vector<std::vector<std::string>> literal_sets;
  int root = kAnyNode;
  // Bytes of the shortest value each node admits (kUnbounded: none is finite, e.g. a required
  // property that recurses), for finishing within a token budget.
  std::vector<uint32_t> min_value_bytes;
};

constexpr uint32_t kUnbounded = 1u << 30;

// Compiles `schema`; errors read "<path>: <what>", the path in JSON-pointer-like dots from
// `path` (e.g. "response_format.json_schema.schema.properties.age: unsupported keyword 'minimum'").
Result<Schema> compile_json_schema(const Json& schema, const std::string& path = "schema");

// Any JSON value (the grammar of JSON itself).
Schema any_json_schema();
// Any JSON object (OpenAI's response_format json_object).
Schema any_json_object_schema();

// The compact JSON text of a string's contents as it sits between quotes (escaped).
std::string json_escaped(const std::string& s);

}  // namespace dsv3::grammar
