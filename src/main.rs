//! The `kstate` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use kstate::image::{Image, ImageSource};
use kstate::kstate::{check, show, CheckpointOptions};

#[derive(Parser)]
#[command(
    name = "kstate",
    version,
    about = "Checkpoint and restart Linux process trees with their namespaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checkpoint a process tree and its namespaces into one image file.
    Checkpoint {
        /// Pid of the root of the tree.
        #[arg(short = 't', long = "tree", value_name = "PID")]
        tree: i32,
        /// Image file to write (`-` for standard output).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Keep the tree running after the checkpoint (by default it is
        /// killed once the image is complete, as with CRIU).
        #[arg(long = "leave-running")]
        leave_running: bool,
        /// Record a mount as external, as CRIU does: mnt[MOUNTPOINT]:KEY.
        /// The restart binds the path given for KEY there. Repeatable.
        #[arg(long = "external", value_name = "mnt[MOUNTPOINT]:KEY")]
        external: Vec<String>,
        /// Flush the image to stable storage (fdatasync) before it is
        /// renamed into place and the tree is killed. Off by default, as
        /// with CRIU: the image is checksummed, so a torn one is refused.
        #[arg(long = "sync")]
        sync: bool,
    },
    /// Restart the tree of an image.
    Restart {
        /// Image file.
        file: PathBuf,
        /// Do not wait for the restored root; exit once the tree runs.
        #[arg(long = "restore-detached", short = 'd')]
        restore_detached: bool,
        /// Write the restored root's pid to this file.
        #[arg(long = "pidfile", value_name = "FILE")]
        pidfile: Option<PathBuf>,
        /// Restore into an existing namespace: NS:PID or NS:FILE, for net,
        /// uts, ipc, mnt, time, cgroup and user (user:PID:UID,GID switches to
        /// UID,GID once in it). Repeatable.
        #[arg(long = "join-ns", value_name = "NS:PID|NS_FILE[:EXTRA]")]
        join_ns: Vec<String>,
        /// Create this namespace anew and leave it unconfigured (net).
        #[arg(long = "empty-ns", value_name = "NS")]
        empty_ns: Vec<String>,
        /// An external resource, as CRIU does (repeatable): mnt[KEY]:PATH
        /// binds PATH for an external mount; veth[INNER]:OUTER[@BRIDGE] makes
        /// the outer end of a veth whose peer was outside the tree in kstate's
        /// own network namespace as OUTER, on BRIDGE if given.
        #[arg(
            long = "external",
            value_name = "mnt[KEY]:PATH|veth[INNER]:OUTER[@BRIDGE]"
        )]
        external: Vec<String>,
    },
    /// Show an image's objects.
    Show {
        /// Image file (`-` for standard input).
        file: PathBuf,
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
    },
    /// Compare two images field by field (exit 1 when they differ).
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Also compare the fields that legitimately change between two
        /// checkpoints of one workload (registers, file positions, …).
        #[arg(long)]
        strict: bool,
    },
    /// Report the kernel features kstate relies on.
    Check {
        /// Print JSON for tools.
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Checkpoint {
            tree,
            output,
            leave_running,
            external,
            sync,
        } => {
            let opts = CheckpointOptions {
                root: tree,
                output,
                leave_running,
                external,
                sync,
            };
            let result = kstate::kstate::checkpoint(&opts);
            kstate::kstate::freeze::test_pause("before-exit");
            let s = result.map_err(|e| e.to_string())?;
            log::info!(
                "{} tasks, {} namespaces ({} external), {} nsproxies, {} bytes",
                s.tasks,
                s.namespaces,
                s.external,
                s.nsproxies,
                s.bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restart {
            file,
            restore_detached,
            pidfile,
            join_ns,
            empty_ns,
            external,
        } => {
            // veth[...] specs are the network's; mnt[...] ones the mounts'.
            let (veth, external): (Vec<String>, Vec<String>) =
                external.into_iter().partition(|s| s.starts_with("veth["));
            let external_veth = veth
                .iter()
                .map(|s| kstate::objects::net_restore::ExternalVeth::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            let (join, empty) = kstate::kstate::restart::parse_ns_options(&join_ns, &empty_ns)
                .map_err(|e| e.to_string())?;
            let opts = kstate::kstate::restart::RestartOptions {
                image: file,
                detached: restore_detached,
                pidfile,
                join,
                empty,
                external,
                external_veth,
            };
            let result = kstate::kstate::restart::restart(&opts);
            kstate::kstate::freeze::test_pause("before-exit");
            let code = result.map_err(|e| e.to_string())?;
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        Command::Show { file, json } => {
            let src = ImageSource::open(&file).map_err(|e| e.to_string())?;
            let img = Image::parse(src.bytes()).map_err(|e| format!("{}: {e}", file.display()))?;
            let text = if json {
                let v = show::to_json(&img).map_err(|e| e.to_string())?;
                let mut s = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
                s.push('\n');
                s
            } else {
                show::to_text(&img).map_err(|e| e.to_string())?
            };
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { a, b, strict } => {
            let (sa, sb) = (
                ImageSource::open(&a).map_err(|e| e.to_string())?,
                ImageSource::open(&b).map_err(|e| e.to_string())?,
            );
            let ia = Image::parse(sa.bytes()).map_err(|e| format!("{}: {e}", a.display()))?;
            let ib = Image::parse(sb.bytes()).map_err(|e| format!("{}: {e}", b.display()))?;
            let diffs = kstate::kstate::diff::diff(&ia, &ib, strict).map_err(|e| e.to_string())?;
            let mut text = String::new();
            for d in &diffs {
                text.push_str(&format!("{d}\n"));
            }
            write_stdout(&text)?;
            Ok(if diffs.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Check { json } => {
            let features = check::probe();
            let text = if json {
                let mut s = serde_json::to_string_pretty(&features).map_err(|e| e.to_string())?;
                s.push('\n');
                s
            } else {
                check::to_text(&features)
            };
            write_stdout(&text)?;
            let ok = features.iter().all(|f| f.present || !f.required);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`kstate show | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("standard output: {e}")),
    }
}

fn main() -> ExitCode {
    // Before any thread starts, so that every thread inherits the mask: a
    // tracee's stop wakes the thread waiting for it (`ptrace::wait_until`).
    kstate::sys::ptrace::block_sigchld();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_micros()
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("kstate: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
