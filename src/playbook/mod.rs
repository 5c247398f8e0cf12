//! Playbooks: YAML remediation recipes, their actions, and the dispatcher (`self_healing`).
