//! systemd's exposure score, recomputed: the policy of the systemd on the device as data
//! ([`policy`]), a unit's settings as systemd's assessment reads them ([`info`]), and the
//! formula ([`assess`]). The result equals what that systemd's `systemd-analyze security
//! UNIT` prints (checked against it in the VM tests, on systemd 252 and 257).

pub mod assess;
pub mod info;
pub mod policy;

pub use assess::{Exposure, Level, Row, assess};
pub use info::SecurityInfo;
pub use policy::Policy;
