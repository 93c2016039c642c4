"""The semantic layer: members, their validation, and YAML loading."""
