//! Changes read from the slot reach subscribers, decoded with their types.
