// What the tape keeps of a custom op (xgrad/custom_op.hpp): its name for messages, its
// inputs and its backward rule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/custom_op.hpp"

namespace xgrad::detail {

template <class T>
struct CustomRecord {
  std::string name;
  std::vector<std::uint32_t> inputs;  // tape indices, in the user's order; empty when
                                      // nothing needs a gradient (only the name is kept)
  decltype(CustomOp<T>::backward) backward;
};

/// How every message names a custom op: "custom op 'name'".
inline std::string custom_op_label(const std::string& name) {
  return "custom op '" + name + "'";
}

/// The custom op's label for a custom node, the table's op name for any other: the name
/// error messages give a node.
template <class T>
std::string node_name(const Node<T>& n) {
  if (n.custom) return custom_op_label(n.custom->name);
  return op_name(n.op);
}

}  // namespace xgrad::detail
