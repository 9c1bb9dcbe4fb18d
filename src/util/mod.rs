//! Small helpers with users across the crate and no domain meaning: terminal tables (`console`),
//! memory hints (`mem`) and fork-join on scoped threads (`par`).

pub mod console;
pub mod mem;
pub mod par;
