#include "grammar/json_schema.h"

#include <algorithm>
#include <map>
#include <set>

namespace dsv3::grammar {
namespace {

constexpr size_t kMaxNodes = 4096;
constexpr int kMaxSchemaDepth = 32;
constexpr size_t kMaxProperties = 64;
constexpr size_t kMaxEnumValues = 64;

// Keywords that describe and constrain nothing.
const std::set<std::string> kAnnotations = {"title", "description", "$schema", "$id", "$comment",
                                            "examples", "default", "strict"};

uint32_t add_capped(uint64_t a) { return static_cast<uint32_t>(std::min<uint64_t>(a, kUnbounded)); }

// Shortest value of each node, by fixed-point iteration (schemas may recurse through $ref):
// every pass can only lower a bound, and a pass that changes nothing ends it.
void compute_min_value_bytes(Schema& s) {
  std::vector<uint32_t>& m = s.min_value_bytes;
  m.assign(s.nodes.size(), kUnbounded);
  for (size_t pass = 0; pass <= s.nodes.size() + 1; ++pass) {
    bool changed = false;
    for (size_t i = 0; i < s.nodes.size(); ++i) {
      const SchemaNode& n = s.nodes[i];
      uint64_t best = kUnbounded;
      if (!n.any_of.empty()) {
        for (int alt : n.any_of) best = std::min<uint64_t>(best, m[static_cast<size_t>(alt)]);
      } else if (n.literal_set >= 0) {
        for (const std::string& t : s.literal_sets[static_cast<size_t>(n.literal_set)]) best = std::min<uint64_t>(best, t.size());
      } else {
        if (n.types & (kNumber | kInteger)) best = 1;  // 0
        if (n.types & (kNull | kBoolean)) best = std::min<uint64_t>(best, 4);  // null, true
        if (n.types & kString) best = std::min<uint64_t>(best, 2 + std::min<uint64_t>(static_cast<uint64_t>(n.min_length), kUnbounded));
        if (n.types & kArray) {
          const uint64_t items = std::min<uint64_t>(static_cast<uint64_t>(n.min_items), 1u << 20);
          best = std::min<uint64_t>(best, 2 + items * m[static_cast<size_t>(n.items)] + (items ? items - 1 : 0));
        }
        if (n.types & kObject) {
          uint64_t bytes = 2, count = 0;
          for (const SchemaProperty& p : n.properties)
            if (p.required) bytes += p.key.size() + 3 + m[static_cast<size_t>(p.node)], ++count;
          best = std::min<uint64_t>(best, bytes + (count ? count - 1 : 0));
        }
      }
      if (add_capped(best) < m[i]) m[i] = add_capped(best), changed = true;
    }
    if (!changed) break;
  }
}

Schema base_schema() {
  Schema s;
  s.nodes.push_back(SchemaNode{});  // kAnyNode
  s.literal_sets.push_back({"true", "false"});
  s.literal_sets.push_back({"null"});
  compute_min_value_bytes(s);
  return s;
}

class Compiler {
 public:
  Compiler(const Json& root, std::string root_path) : root_(root), root_path_(std::move(root_path)) {}

  Result<Schema> run() {
    schema_ = base_schema();
    auto root = compile(root_, root_path_, 0);
    if (!root.ok()) return std::move(root).error();
    schema_.root = *root;
    ref_nodes_["#"] = *root;
    // $refs seen before their target was compiled point at placeholders: fill them now.
    for (auto& [node, target] : pending_refs_) {
      auto it = ref_nodes_.find(target);
      if (it == ref_nodes_.end()) return error_f("%s: $ref target '%s' not found", root_path_.c_str(), target.c_str());
      schema_.nodes[static_cast<size_t>(node)].any_of = {it->second};
    }
    compute_min_value_bytes(schema_);
    if (schema_.min_value_bytes[static_cast<size_t>(schema_.root)] >= kUnbounded)
      return error_f("%s: admits no finite value (a required property recurses)", root_path_.c_str());
    return std::move(schema_);
  }

 private:
  Result<int> new_node() {
    if (schema_.nodes.size() >= kMaxNodes) return error_f("%s: more than %zu schema nodes", root_path_.c_str(), kMaxNodes);
    schema_.nodes.push_back(SchemaNode{});
    return static_cast<int>(schema_.nodes.size() - 1);
  }

  Result<int> compile(const Json& s, const std::string& path, int depth) {
    if (depth > kMaxSchemaDepth) return error_f("%s: schema nested deeper than %d levels", path.c_str(), kMaxSchemaDepth);
    if (s.is_boolean()) {
      if (s.get<bool>()) return kAnyNode;
      return error_f("%s: the schema 'false' admits no value", path.c_str());
    }
    if (!s.is_object()) return error_f("%s: a schema must be an object or a boolean", path.c_str());
    for (const char* defs : {"$defs", "definitions"}) {
      if (!s.contains(defs)) continue;
      if (!s.at(defs).is_object()) return error_f("%s.%s: must be an object", path.c_str(), defs);
      // Compiled where they are referenced; remembered by their pointer.
      for (auto it = s.at(defs).begin(); it != s.at(defs).end(); ++it)
        defs_["#/" + std::string(defs) + "/" + it.key()] = {&it.value(), path + "." + defs + "." + it.key()};
    }
    if (s.contains("$ref")) return compile_ref(s, path, depth);

    auto id = new_node();
    if (!id.ok()) return id;
    const int node = *id;
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      static const std::set<std::string> known = {"type", "properties", "required", "additionalProperties", "items",
                                                  "minItems", "maxItems", "enum", "const", "minLength", "maxLength",
                                                  "anyOf", "$defs", "definitions"};
      if (!known.count(k) && !kAnnotations.count(k))
        return error_f("%s: unsupported keyword '%s'", path.c_str(), k.c_str());
    }
    if (s.contains("type")) {
      auto t = types_of(s.at("type"), path + ".type");
      if (!t.ok()) return std::move(t).error();
      node_at(node).types = *t;
    }
    if (s.contains("enum") || s.contains("const")) {
      std::vector<std::string> texts;
      if (s.contains("const")) texts.push_back(s.at("const").dump());
      if (s.contains("enum")) {
        const Json& e = s.at("enum");
        if (!e.is_array() || e.empty()) return error_f("%s.enum: must be a non-empty array", path.c_str());
        if (e.size() > kMaxEnumValues) return error_f("%s.enum: more than %zu values", path.c_str(), kMaxEnumValues);
        for (const Json& v : e) texts.push_back(v.dump());
      }
      // Only the values of the allowed types remain (enum and type both apply).
      std::vector<std::string> kept;
      for (const std::string& t : texts)
        if (literal_types(Json::parse(t)) & node_at(node).types) kept.push_back(t);
      if (kept.empty()) return error_f("%s: no enum/const value has an allowed type", path.c_str());
      schema_.literal_sets.push_back(std::move(kept));
      node_at(node).literal_set = static_cast<int>(schema_.literal_sets.size() - 1);
    }
    if (s.contains("anyOf")) {
      const Json& a = s.at("anyOf");
      if (!a.is_array() || a.empty()) return error_f("%s.anyOf: must be a non-empty array", path.c_str());
      if (s.contains("type") || s.contains("enum") || s.contains("const") || s.contains("properties") ||
          s.contains("items"))
        return error_f("%s: anyOf next to other constraints is not supported (move them into each branch)", path.c_str());
      for (size_t i = 0; i < a.size(); ++i) {
        auto sub = compile(a[i], path + ".anyOf." + std::to_string(i), depth + 1);
        if (!sub.ok()) return sub;
        node_at(node).any_of.push_back(*sub);
      }
      return node;
    }
    if (auto st = object_keywords(s, node, path, depth); !st.ok()) return std::move(st).error();
    if (auto st = array_keywords(s, node, path, depth); !st.ok()) return std::move(st).error();
    for (const char* key : {"minLength", "maxLength"}) {
      if (!s.contains(key)) continue;
      if (!s.at(key).is_number_unsigned()) return error_f("%s.%s: must be a non-negative integer", path.c_str(), key);
      (std::string(key) == "minLength" ? node_at(node).min_length : node_at(node).max_length) = s.at(key).get<int64_t>();
    }
    if (node_at(node).max_length >= 0 && node_at(node).max_length < node_at(node).min_length)
      return error_f("%s: maxLength is below minLength", path.c_str());
    return node;
  }

  SchemaNode& node_at(int i) { return schema_.nodes[static_cast<size_t>(i)]; }

  Result<int> compile_ref(const Json& s, const std::string& path, int depth) {
    for (auto it = s.begin(); it != s.end(); ++it)
      if (it.key() != "$ref" && it.key() != "$defs" && it.key() != "definitions" && !kAnnotations.count(it.key()))
        return error_f("%s: keywords next to $ref are not supported ('%s')", path.c_str(), it.key().c_str());
    if (!s.at("$ref").is_string()) return error_f("%s.$ref: must be a string", path.c_str());
    const std::string target = s.at("$ref").get<std::string>();
    if (target == "#") return schema_root_ref(path);
    auto known = ref_nodes_.find(target);
    if (known != ref_nodes_.end()) return known->second;
    auto def = defs_.find(target);
    if (def == defs_.end())
      return error_f("%s.$ref: '%s' is not supported (only \"#\" and \"#/$defs/NAME\" of this schema)", path.c_str(),
                     target.c_str());
    // A placeholder first (an anyOf of one, filled in at the end), so that a definition that
    // refers to itself closes a cycle instead of recursing forever.
    auto id = new_node();
    if (!id.ok()) return id;
    ref_nodes_[target] = *id;
    auto body = compile(*def->second.first, def->second.second, depth + 1);
    if (!body.ok()) return body;
    ref_nodes_[target] = *body;
    pending_refs_.push_back({*id, target});
    return *body;
  }

  Result<int> schema_root_ref(const std::string& path) {
    auto id = new_node();
    if (!id.ok()) return id;
    (void)path;
    pending_refs_.push_back({*id, "#"});
    return *id;
  }

  static uint8_t literal_types(const Json& v) {
    if (v.is_object()) return kObject;
    if (v.is_array()) return kArray;
    if (v.is_string()) return kString;
    if (v.is_boolean()) return kBoolean;
    if (v.is_null()) return kNull;
    if (v.is_number_integer() || v.is_number_unsigned()) return kNumber | kInteger;
    return kNumber;
  }

  static Result<uint8_t> types_of(const Json& t, const std::string& path) {
    static const std::map<std::string, uint8_t> names = {{"object", kObject},   {"array", kArray},
                                                         {"string", kString},   {"number", kNumber | kInteger},
                                                         {"integer", kInteger}, {"boolean", kBoolean},
                                                         {"null", kNull}};
    std::vector<Json> list;
    if (t.is_string()) list.push_back(t);
    else if (t.is_array() && !t.empty()) list.assign(t.begin(), t.end());
    else return error_f("%s: must be a type name or a non-empty array of them", path.c_str());
    uint8_t bits = 0;
    for (const Json& n : list) {
      if (!n.is_string() || !names.count(n.get<std::string>()))
        return error_f("%s: unknown type %s", path.c_str(), n.dump().c_str());
      bits |= names.at(n.get<std::string>());
    }
    return bits;
  }

  Status object_keywords(const Json& s, int node, const std::string& path, int depth) {
    if (s.contains("properties")) {
      const Json& props = s.at("properties");
      if (!props.is_object()) return error_f("%s.properties: must be an object", path.c_str());
      if (props.size() > kMaxProperties)
        return error_f("%s.properties: more than %zu properties", path.c_str(), kMaxProperties);
      for (auto it = props.begin(); it != props.end(); ++it) {
        auto sub = compile(it.value(), path + ".properties." + it.key(), depth + 1);
        if (!sub.ok()) return std::move(sub).error();
        node_at(node).properties.push_back({json_escaped(it.key()), *sub, false});
      }
    }
    if (s.contains("required")) {
      const Json& req = s.at("required");
      if (!req.is_array()) return error_f("%s.required: must be an array of property names", path.c_str());
      for (const Json& r : req) {
        if (!r.is_string()) return error_f("%s.required: must be an array of property names", path.c_str());
        const std::string key = json_escaped(r.get<std::string>());
        bool found = false;
        auto& props = node_at(node).properties;
        for (size_t i = 0; i < props.size(); ++i)
          if (props[i].key == key) {
            props[i].required = true;
            node_at(node).required_mask |= uint64_t{1} << i;
            found = true;
          }
        if (!found)
          return error_f("%s.required: '%s' is not in properties (required properties must be listed there)",
                         path.c_str(), r.get<std::string>().c_str());
      }
    }
    if (s.contains("additionalProperties")) {
      const Json& a = s.at("additionalProperties");
      if (a.is_boolean() && !a.get<bool>()) {
        node_at(node).additional = kNoNode;
      } else {
        auto sub = compile(a, path + ".additionalProperties", depth + 1);
        if (!sub.ok()) return std::move(sub).error();
        node_at(node).additional = *sub;
      }
    }
    return {};
  }

  Status array_keywords(const Json& s, int node, const std::string& path, int depth) {
    if (s.contains("items")) {
      if (s.at("items").is_array()) return error_f("%s.items: tuple form (an array) is not supported", path.c_str());
      auto sub = compile(s.at("items"), path + ".items", depth + 1);
      if (!sub.ok()) return std::move(sub).error();
      node_at(node).items = *sub;
    }
    for (const char* key : {"minItems", "maxItems"}) {
      if (!s.contains(key)) continue;
      if (!s.at(key).is_number_unsigned()) return error_f("%s.%s: must be a non-negative integer", path.c_str(), key);
      (std::string(key) == "minItems" ? node_at(node).min_items : node_at(node).max_items) = s.at(key).get<int64_t>();
    }
    if (node_at(node).max_items >= 0 && node_at(node).max_items < node_at(node).min_items)
      return error_f("%s: maxItems is below minItems", path.c_str());
    return {};
  }

  const Json& root_;
  std::string root_path_;
  Schema schema_;
  std::map<std::string, std::pair<const Json*, std::string>> defs_;  // pointer -> (schema, path)
  std::map<std::string, int> ref_nodes_;                              // pointer -> compiled node
  std::vector<std::pair<int, std::string>> pending_refs_;             // placeholder node -> pointer
};

}  // namespace

Result<Schema> compile_json_schema(const Json& schema, const std::string& path) { return Compiler(schema, path).run(); }

Schema any_json_schema() { return base_schema(); }

Schema any_json_object_schema() {
  Schema s = base_schema();
  SchemaNode object;
  object.types = kObject;
  s.nodes.push_back(object);
  s.root = 1;
  compute_min_value_bytes(s);
  return s;
}

std::string json_escaped(const std::string& s) {
  const std::string quoted = Json(s).dump();
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace dsv3::grammar
