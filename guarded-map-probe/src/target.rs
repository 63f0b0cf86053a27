//! The target process: its executable, where the hooks are in it, and access to its memory.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use guarded_map_probe_common::{
    ActiveBackend, CONFIG_SYMBOL, OP_HOOK_SYMBOL, PIN_SYMBOL, PinRequest, ProbeConfig,
    SEMAPHORE_SYMBOL, SUMMARY_HOOK_SYMBOL, map_id,
};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

use super::ProbeError;

/// Where the hooks are: as offsets into the executable's file (what uprobes and the kernel's
/// reference counter take), and the data ones also as link-time addresses (to find them in the
/// process's memory: a file offset can be mapped twice, when the read-only-after-relocation
/// segment and `.data` share a page of the file).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hooks {
    pub summary: u64,
    pub op: u64,
    pub semaphore: u64,
    pub semaphore_address: u64,
    pub config_address: u64,
    /// The pin request's words (`None` in a target built before `pin` existed).
    pub pin_address: Option<u64>,
    /// Link-time address of the executable's first byte (its segment at file offset 0).
    pub base_address: u64,
}

/// A running process built with guarded-map.
#[derive(Debug)]
pub(crate) struct Target {
    pub pid: u32,
    /// What `/proc/PID/exe` points to (for messages).
    pub exe: String,
    /// `/proc/PID/exe`, the path uprobes are attached through: it reaches the executable's inode
    /// even if the file was replaced or deleted since the process started.
    pub exe_link: PathBuf,
    pub hooks: Hooks,
}

impl Target {
    /// Finds the process and the hooks in its executable.
    pub fn open(pid: u32) -> Result<Target, ProbeError> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if pid == 0 || !proc_dir.exists() {
            return Err(ProbeError::NoSuchProcess(pid));
        }
        let exe_link = proc_dir.join("exe");
        let denied = || {
            ProbeError::Privileges(format!(
                "cannot read the executable of process {pid} (needs CAP_SYS_PTRACE, or root with \
                 its capabilities)"
            ))
        };
        let exe = match fs::read_link(&exe_link) {
            Ok(path) => path.display().to_string(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ProbeError::NoSuchProcess(pid));
            }
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => return Err(denied()),
            Err(err) => {
                return Err(ProbeError::io(
                    format!("reading the executable of process {pid}"),
                    err,
                ));
            }
        };
        let data = fs::read(&exe_link).map_err(|err| match err.kind() {
            io::ErrorKind::PermissionDenied => denied(),
            io::ErrorKind::NotFound => ProbeError::NoSuchProcess(pid),
            _ => ProbeError::io(format!("reading {exe} (process {pid})"), err),
        })?;
        let hooks = find_hooks(&data).map_err(|missing| ProbeError::NoHooks {
            pid,
            exe: exe.clone(),
            missing,
        })?;
        Ok(Target {
            pid,
            exe,
            exe_link,
            hooks,
        })
    }

    /// Whether the process is still running.
    pub fn alive(&self) -> bool {
        // SAFETY: `kill` with signal 0 only checks that the process exists.
        let ret = unsafe { libc::kill(self.pid as libc::pid_t, 0) };
        ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }

    /// The address in the process of a link-time address of its executable: shifted by where the
    /// executable's first page is mapped (`/proc/PID/maps`, the mapping at file offset 0).
    fn address_of(&self, link_address: u64) -> Result<u64, ProbeError> {
        let maps = fs::read_to_string(format!("/proc/{}/maps", self.pid))
            .map_err(|err| self.gone_or(err, "reading its memory map"))?;
        let exe_inode = fs::metadata(&self.exe_link)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .map_err(|err| self.gone_or(err, "reading its executable"))?;
        let start = maps.lines().find_map(|line| {
            // start-end perms offset dev inode path
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [range, _perms, offset, _dev, inode, ..] = fields[..] else {
                return None;
            };
            if inode.parse::<u64>().ok() != Some(exe_inode)
                || u64::from_str_radix(offset, 16) != Ok(0)
            {
                return None;
            }
            u64::from_str_radix(range.split_once('-')?.0, 16).ok()
        });
        match start {
            Some(start) => Ok(link_address - self.hooks.base_address + start),
            None => Err(ProbeError::io(
                format!("finding {} in the memory of process {}", self.exe, self.pid),
                io::Error::from(io::ErrorKind::NotFound),
            )),
        }
    }

    fn mem(&self, write: bool) -> Result<File, ProbeError> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(format!("/proc/{}/mem", self.pid))
            .map_err(|err| self.gone_or(err, "opening its memory"))
    }

    fn gone_or(&self, err: io::Error, what: &str) -> ProbeError {
        if !self.alive() {
            ProbeError::TargetExited(self.pid)
        } else {
            ProbeError::io(format!("process {}: {what}", self.pid), err)
        }
    }

    /// The semaphore's current value, read from the process's memory.
    pub fn semaphore(&self) -> Result<u16, ProbeError> {
        let address = self.address_of(self.hooks.semaphore_address)?;
        let mut bytes = [0u8; 2];
        self.mem(false)?
            .read_exact_at(&mut bytes, address)
            .map_err(|err| self.gone_or(err, "reading the semaphore"))?;
        Ok(u16::from_ne_bytes(bytes))
    }

    /// Writes the probe's config into the process.
    /// Asks the target to pin the adaptive maps of `label` to `to` (`None`: let their cost model
    /// decide): writes the map's id, then the request word with a number above the last one.
    /// Returns the request's number.
    pub fn write_pin(&self, label: &str, to: Option<ActiveBackend>) -> Result<u32, ProbeError> {
        let Some(pin) = self.hooks.pin_address else {
            return Err(ProbeError::Unsupported(format!(
                "process {} was built with a guarded-map that cannot be pinned from outside",
                self.pid
            )));
        };
        let address = self.address_of(pin)?;
        let mem = self.mem(true)?;
        let mut words = [0u8; 16];
        mem.read_exact_at(&mut words, address)
            .map_err(|err| self.gone_or(err, "reading the pin request"))?;
        let last = u64::from_ne_bytes(words[8..].try_into().expect("8 bytes"));
        let request = PinRequest {
            map_id: map_id(label),
            number: ((last >> 8) as u32).wrapping_add(1).max(1),
            to,
        };
        mem.write_all_at(&request.map_id.to_ne_bytes(), address)
            .and_then(|()| mem.write_all_at(&request.word().to_ne_bytes(), address + 8))
            .map_err(|err| self.gone_or(err, "writing the pin request"))?;
        Ok(request.number)
    }

    pub fn write_config(&self, config: ProbeConfig) -> Result<(), ProbeError> {
        let address = self.address_of(self.hooks.config_address)?;
        self.mem(true)?
            .write_all_at(&config.to_bytes(), address)
            .map_err(|err| self.gone_or(err, "writing the sampling config"))
    }
}

/// The hooks' file offsets in an ELF executable, or the symbols it lacks.
fn find_hooks(data: &[u8]) -> Result<Hooks, Vec<&'static str>> {
    const ALL: [&str; 4] = [
        SUMMARY_HOOK_SYMBOL,
        OP_HOOK_SYMBOL,
        SEMAPHORE_SYMBOL,
        CONFIG_SYMBOL,
    ];
    let Ok(file) = object::File::parse(data) else {
        return Err(ALL.to_vec());
    };
    let Some(base_address) = file
        .segments()
        .find(|segment| segment.file_range().0 == 0)
        .map(|segment| segment.address())
    else {
        return Err(ALL.to_vec());
    };
    let mut found = [None; 4];
    let mut pin_address = None;
    for symbol in file.symbols() {
        let Ok(name) = symbol.name() else { continue };
        if name == PIN_SYMBOL {
            pin_address = Some(symbol.address());
            continue;
        }
        let Some(i) = ALL.iter().position(|&s| s == name) else {
            continue;
        };
        let Some(section) = symbol
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
        else {
            continue;
        };
        let Some((section_offset, _)) = section.file_range() else {
            continue; // no bytes in the file (.bss): the kernel could not reach it
        };
        let address = symbol.address();
        found[i] = Some((address - section.address() + section_offset, address));
    }
    match found {
        [
            Some((summary, _)),
            Some((op, _)),
            Some((semaphore, semaphore_address)),
            Some((_, config_address)),
        ] => Ok(Hooks {
            summary,
            op,
            semaphore,
            semaphore_address,
            config_address,
            pin_address,
            base_address,
        }),
        _ => Err(ALL
            .iter()
            .zip(found)
            .filter(|(_, f)| f.is_none())
            .map(|(s, _)| *s)
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    guarded_map::map_spec!(Linked: HashMap<u32, u32>, sharded);

    #[test]
    fn this_test_binary_has_the_hooks() {
        // A map operation links guarded-map's hooks into this test binary.
        let map: guarded_map::GuardedMap<u32, u32, Linked> = guarded_map::GuardedMap::new();
        map.insert(1, 1);
        let data = fs::read("/proc/self/exe").unwrap();
        let hooks = find_hooks(&data).unwrap();
        assert_ne!(hooks.summary, hooks.op);
        let me = Target::open(std::process::id()).unwrap();
        assert_eq!(me.semaphore().unwrap(), 0);
    }

    #[test]
    fn other_files_lack_them() {
        assert_eq!(find_hooks(b"not an elf").unwrap_err().len(), 4);
        let sh = fs::read("/bin/sh").unwrap();
        assert_eq!(find_hooks(&sh).unwrap_err().len(), 4);
        assert!(matches!(Target::open(0), Err(ProbeError::NoSuchProcess(0))));
        assert!(matches!(
            Target::open(u32::MAX),
            Err(ProbeError::NoSuchProcess(_))
        ));
    }
}
