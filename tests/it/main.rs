//! Host integration tests, linked as one binary (one link instead of eleven on two cores).
//! Each module is a specification of one area; `common/` holds the shared helpers.

mod attestation;
mod audit;
mod cli;
mod common;

mod confine_landlock;
mod confine_seccomp;
mod daemon;
mod doctor;
mod exec;
mod groups;
mod hostile_user;
mod identity;
mod initramfs;
mod integrity;
mod introspection;
mod json_shapes;
mod keylime;
mod layout;
mod metrics;
mod mount_view;
mod profiles;
mod redteam;
mod report;
mod root_service;
mod sbom;
mod syscall_sweep;
mod syscall_tables;
mod tpm;
mod verity;
mod vulns;
