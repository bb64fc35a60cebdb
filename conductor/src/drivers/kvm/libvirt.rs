//! The libvirt client library, loaded at run time.
//!
//! `dlopen("libvirt.so.0")` rather than linking: conductors build without
//! libvirt's headers and run on hosts without libvirt at all; only nodes
//! with `mgt=kvm` need it, and they get a clear error when it is missing.
//! libvirt's C API is blocking, so every call here runs on a blocking
//! thread (see `hypervisor.rs`). Connections and domain handles are
//! thread-safe reference-counted objects in libvirt, so one connection
//! serves many threads at once.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

type ConnectPtr = *mut c_void;
type DomainPtr = *mut c_void;
type PoolPtr = *mut c_void;
type VolPtr = *mut c_void;
type StreamPtr = *mut c_void;
type ErrorFunc = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// `virConnectCredential`.
#[repr(C)]
struct Credential {
    kind: c_int,
    prompt: *const c_char,
    challenge: *const c_char,
    defresult: *const c_char,
    result: *mut c_char,
    resultlen: c_uint,
}

/// `virNodeInfo`.
#[repr(C)]
struct RawNodeInfo {
    model: [c_char; 32],
    memory_kib: std::ffi::c_ulong,
    cpus: c_uint,
    mhz: c_uint,
    nodes: c_uint,
    sockets: c_uint,
    cores: c_uint,
    threads: c_uint,
}

/// `virDomainInfo`.
#[repr(C)]
struct RawDomainInfo {
    state: u8,
    max_mem_kib: std::ffi::c_ulong,
    memory_kib: std::ffi::c_ulong,
    nr_virt_cpu: u16,
    cpu_time: u64,
}

type AuthCallback = unsafe extern "C" fn(*mut Credential, c_uint, *mut c_void) -> c_int;

/// `virConnectAuth`.
#[repr(C)]
struct ConnectAuth {
    credtype: *mut c_int,
    ncredtype: c_uint,
    cb: AuthCallback,
    cbdata: *mut c_void,
}

// virConnectCredentialType.
const CRED_AUTHNAME: c_int = 2;
const CRED_PASSPHRASE: c_int = 5;
const CRED_NOECHOPROMPT: c_int = 7;

// virErrorNumber values we act on.
pub const ERR_INVALID_ARG: c_int = 8;
pub const ERR_NO_DOMAIN: c_int = 42;
pub const ERR_NO_STORAGE_POOL: c_int = 49;
pub const ERR_NO_STORAGE_VOL: c_int = 50;
pub const ERR_OPERATION_INVALID: c_int = 55;

// virDomainState.
pub const DOMAIN_SHUTOFF: c_int = 5;
pub const DOMAIN_CRASHED: c_int = 6;
pub const DOMAIN_NOSTATE: c_int = 0;

/// Undefine also removes managed save, snapshot and checkpoint metadata
/// and NVRAM (`VIR_DOMAIN_UNDEFINE_*`), so nothing of the guest is left.
pub const UNDEFINE_ALL: c_uint = 1 | (1 << 1) | (1 << 2) | (1 << 4);

/// `VIR_DOMAIN_XML_INACTIVE`: the persistent definition, what `define`
/// takes back.
pub const XML_INACTIVE: c_uint = 1 << 1;

/// Declares the functions we use; each becomes a field holding the symbol.
macro_rules! libvirt_api {
    ($( fn $name:ident( $($arg:ty),* ) -> $ret:ty; )*) => {
        #[allow(non_snake_case)]
        struct Api {
            $( $name: unsafe extern "C" fn($($arg),*) -> $ret, )*
        }

        impl Api {
            /// # Safety
            /// `handle` is a live `dlopen` handle of libvirt.so.0, whose
            /// symbols have the C signatures declared above.
            unsafe fn resolve(handle: *mut c_void) -> Result<Api, String> {
                Ok(Api {
                    $( $name: {
                        let sym = concat!(stringify!($name), "\0");
                        // SAFETY: `sym` is NUL-terminated; a non-null result
                        // is the function declared with this signature.
                        let p = unsafe { libc::dlsym(handle, sym.as_ptr().cast()) };
                        if p.is_null() {
                            return Err(format!(
                                "libvirt.so.0 has no {} (libvirt too old?)",
                                stringify!($name)
                            ));
                        }
                        unsafe {
                            std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) -> $ret>(p)
                        }
                    }, )*
                })
            }
        }
    };
}

libvirt_api! {
    fn virInitialize() -> c_int;
    fn virSetErrorFunc(*mut c_void, Option<ErrorFunc>) -> ();
    fn virGetLastErrorCode() -> c_int;
    fn virGetLastErrorMessage() -> *const c_char;
    fn virResetLastError() -> ();
    fn virConnectOpen(*const c_char) -> ConnectPtr;
    fn virConnectOpenAuth(*const c_char, *mut ConnectAuth, c_uint) -> ConnectPtr;
    fn virConnectClose(ConnectPtr) -> c_int;
    fn virConnectIsAlive(ConnectPtr) -> c_int;
    fn virConnectListAllDomains(ConnectPtr, *mut *mut DomainPtr, c_uint) -> c_int;
    fn virDomainLookupByName(ConnectPtr, *const c_char) -> DomainPtr;
    fn virDomainDefineXML(ConnectPtr, *const c_char) -> DomainPtr;
    fn virDomainFree(DomainPtr) -> c_int;
    fn virDomainGetName(DomainPtr) -> *const c_char;
    fn virDomainGetState(DomainPtr, *mut c_int, *mut c_int, c_uint) -> c_int;
    fn virDomainIsPersistent(DomainPtr) -> c_int;
    fn virDomainGetXMLDesc(DomainPtr, c_uint) -> *mut c_char;
    fn virDomainCreate(DomainPtr) -> c_int;
    fn virDomainDestroy(DomainPtr) -> c_int;
    fn virDomainShutdown(DomainPtr) -> c_int;
    fn virDomainReset(DomainPtr, c_uint) -> c_int;
    fn virDomainGetInfo(DomainPtr, *mut RawDomainInfo) -> c_int;
    fn virDomainUndefineFlags(DomainPtr, c_uint) -> c_int;
    fn virNodeGetInfo(ConnectPtr, *mut RawNodeInfo) -> c_int;
    fn virStoragePoolLookupByName(ConnectPtr, *const c_char) -> PoolPtr;
    fn virStoragePoolFree(PoolPtr) -> c_int;
    fn virStoragePoolLookupByVolume(VolPtr) -> PoolPtr;
    fn virStorageVolCreateXML(PoolPtr, *const c_char, c_uint) -> VolPtr;
    fn virStorageVolLookupByName(PoolPtr, *const c_char) -> VolPtr;
    fn virStorageVolLookupByPath(ConnectPtr, *const c_char) -> VolPtr;
    fn virStorageVolGetPath(VolPtr) -> *mut c_char;
    fn virStorageVolDelete(VolPtr, c_uint) -> c_int;
    fn virStorageVolFree(VolPtr) -> c_int;
    fn virStreamNew(ConnectPtr, c_uint) -> StreamPtr;
    fn virDomainOpenConsole(DomainPtr, *const c_char, StreamPtr, c_uint) -> c_int;
    fn virStreamRecv(StreamPtr, *mut c_char, usize) -> c_int;
    fn virStreamSend(StreamPtr, *const c_char, usize) -> c_int;
    fn virStreamAbort(StreamPtr) -> c_int;
    fn virStreamFree(StreamPtr) -> c_int;
}

/// `VIR_DOMAIN_CONSOLE_FORCE`: take the console from another session.
pub const CONSOLE_FORCE: c_uint = 1;

/// A reference-counted libvirt object we own one reference to: the
/// struct, `Send` (libvirt objects are thread-safe), and `Drop` calling
/// the matching free function.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident($ptr:ty) freed by $free:ident) => {
        $(#[$doc])*
        pub struct $name {
            api: &'static Api,
            ptr: $ptr,
        }

        // SAFETY: libvirt's objects are reference-counted and thread-safe.
        unsafe impl Send for $name {}

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: we own one reference to the object.
                unsafe {
                    (self.api.$free)(self.ptr);
                }
            }
        }
    };
}

/// A failed libvirt call: libvirt's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LibvirtError {
    pub code: c_int,
    pub message: String,
}

/// The library, loaded once per process.
fn api() -> Result<&'static Api, LibvirtError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: dlopen of a NUL-terminated name; RTLD_LOCAL keeps its
        // symbols out of the global namespace.
        let handle = unsafe { libc::dlopen(c"libvirt.so.0".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err("the libvirt client library (libvirt.so.0) is not installed on this conductor; install Debian's `libvirt0`".into());
        }
        // SAFETY: a live handle of libvirt.so.0 (never closed).
        let api = unsafe { Api::resolve(handle)? };
        // SAFETY: plain calls; a no-op handler stops libvirt from printing
        // every error on our stderr (we report them per node instead).
        unsafe {
            (api.virInitialize)();
            (api.virSetErrorFunc)(std::ptr::null_mut(), Some(silent));
        }
        Ok(api)
    })
    .as_ref()
    .map_err(|e| LibvirtError {
        code: -1,
        message: e.clone(),
    })
}

unsafe extern "C" fn silent(_: *mut c_void, _: *mut c_void) {}

/// The calling thread's last libvirt error (libvirt keeps it per thread).
fn last_error(api: &Api) -> LibvirtError {
    // SAFETY: both return thread-local state; the message pointer stays
    // valid until the next libvirt call on this thread, and is copied
    // before the reset.
    unsafe {
        let code = (api.virGetLastErrorCode)();
        let msg = (api.virGetLastErrorMessage)();
        let message = if msg.is_null() {
            "unknown libvirt error".to_string()
        } else {
            CStr::from_ptr(msg).to_string_lossy().into_owned()
        };
        (api.virResetLastError)();
        LibvirtError { code, message }
    }
}

/// A lookup's result: the object, None when libvirt says `missing` (no
/// such domain, pool, volume), or the error.
fn missing_is_none(
    api: &Api,
    ptr: *mut c_void,
    missing: c_int,
) -> Result<Option<*mut c_void>, LibvirtError> {
    if !ptr.is_null() {
        return Ok(Some(ptr));
    }
    let e = last_error(api);
    if e.code == missing { Ok(None) } else { Err(e) }
}

fn c_string(what: &str, s: &str) -> Result<CString, LibvirtError> {
    CString::new(s).map_err(|_| LibvirtError {
        code: -1,
        message: format!("{what} contains a NUL byte"),
    })
}

/// Credentials answered to libvirt's prompts (SSH password transports).
pub struct Credentials {
    pub username: CString,
    pub password: CString,
}

/// Answers libvirt's credential prompts from a `Credentials`.
unsafe extern "C" fn answer(creds: *mut Credential, n: c_uint, data: *mut c_void) -> c_int {
    // SAFETY: libvirt hands back the `cbdata` we passed (a live
    // `Credentials`) and `n` credentials to fill; results are malloc'd
    // because libvirt frees them.
    unsafe {
        let given = &*(data as *const Credentials);
        for i in 0..n as usize {
            let c = &mut *creds.add(i);
            let value = match c.kind {
                CRED_AUTHNAME => &given.username,
                CRED_PASSPHRASE | CRED_NOECHOPROMPT => &given.password,
                _ => return -1,
            };
            let bytes = value.as_bytes_with_nul();
            let buf = libc::malloc(bytes.len()) as *mut c_char;
            if buf.is_null() {
                return -1;
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), buf, bytes.len());
            c.result = buf;
            c.resultlen = (bytes.len() - 1) as c_uint;
        }
    }
    0
}

handle! {
    /// One open libvirt connection.
    Connection(ConnectPtr) freed by virConnectClose
}

// SAFETY: libvirt connections may be used from any thread, concurrently
// (the remote driver multiplexes calls on one socket).
unsafe impl Sync for Connection {}

impl Connection {
    /// Opens `uri`; `creds` answers password prompts (never put in the URI).
    pub fn open(uri: &str, creds: Option<&Credentials>) -> Result<Connection, LibvirtError> {
        let api = api()?;
        let c_uri = c_string("libvirt URI", uri)?;
        // SAFETY: valid C strings; the auth struct and the credentials it
        // points at outlive the call.
        let ptr = unsafe {
            match creds {
                None => (api.virConnectOpen)(c_uri.as_ptr()),
                Some(creds) => {
                    let mut kinds = [CRED_AUTHNAME, CRED_PASSPHRASE, CRED_NOECHOPROMPT];
                    let mut auth = ConnectAuth {
                        credtype: kinds.as_mut_ptr(),
                        ncredtype: kinds.len() as c_uint,
                        cb: answer,
                        cbdata: creds as *const Credentials as *mut c_void,
                    };
                    (api.virConnectOpenAuth)(c_uri.as_ptr(), &mut auth, 0)
                }
            }
        };
        if ptr.is_null() {
            return Err(last_error(api));
        }
        Ok(Connection { api, ptr })
    }

    /// Whether the connection still works (false once its socket failed).
    pub fn is_alive(&self) -> bool {
        // SAFETY: a live connection.
        unsafe { (self.api.virConnectIsAlive)(self.ptr) == 1 }
    }

    /// The domain named `name`, or None when there is none.
    pub fn lookup(&self, name: &str) -> Result<Option<Domain>, LibvirtError> {
        let c_name = c_string("domain name", name)?;
        // SAFETY: a live connection and a C string.
        let ptr = unsafe { (self.api.virDomainLookupByName)(self.ptr, c_name.as_ptr()) };
        Ok(missing_is_none(self.api, ptr, ERR_NO_DOMAIN)?.map(|p| self.domain(p)))
    }

    /// Defines (or redefines) a persistent domain from its XML.
    pub fn define(&self, xml: &str) -> Result<Domain, LibvirtError> {
        let c_xml = c_string("domain XML", xml)?;
        // SAFETY: a live connection and a C string.
        let ptr = unsafe { (self.api.virDomainDefineXML)(self.ptr, c_xml.as_ptr()) };
        if ptr.is_null() {
            return Err(last_error(self.api));
        }
        Ok(self.domain(ptr))
    }

    /// Every domain, running or not, persistent or transient.
    pub fn all_domains(&self) -> Result<Vec<Domain>, LibvirtError> {
        let mut list: *mut DomainPtr = std::ptr::null_mut();
        // SAFETY: libvirt allocates `list` (freed below with free()) and
        // hands us one reference per domain (owned by the `Domain`s).
        unsafe {
            let n = (self.api.virConnectListAllDomains)(self.ptr, &mut list, 0);
            if n < 0 {
                return Err(last_error(self.api));
            }
            let out = (0..n as usize).map(|i| self.domain(*list.add(i))).collect();
            libc::free(list.cast());
            Ok(out)
        }
    }

    fn domain(&self, ptr: DomainPtr) -> Domain {
        Domain { api: self.api, ptr }
    }

    /// The host's memory (MiB) and CPU count.
    pub fn host_info(&self) -> Result<(u64, u32), LibvirtError> {
        // SAFETY: a live connection and a zeroed out-struct of the C layout.
        unsafe {
            let mut info: RawNodeInfo = std::mem::zeroed();
            if (self.api.virNodeGetInfo)(self.ptr, &mut info) < 0 {
                return Err(last_error(self.api));
            }
            Ok((info.memory_kib as u64 / 1024, info.cpus))
        }
    }

    /// The storage pool named `name`, or None.
    pub fn pool(&self, name: &str) -> Result<Option<Pool>, LibvirtError> {
        let c_name = c_string("pool name", name)?;
        // SAFETY: a live connection and a C string.
        let ptr = unsafe { (self.api.virStoragePoolLookupByName)(self.ptr, c_name.as_ptr()) };
        Ok(
            missing_is_none(self.api, ptr, ERR_NO_STORAGE_POOL)?.map(|p| Pool {
                api: self.api,
                ptr: p,
            }),
        )
    }

    /// The storage volume at `path`, or None when no pool holds it.
    pub fn volume_at(&self, path: &str) -> Result<Option<Volume>, LibvirtError> {
        let c_path = c_string("volume path", path)?;
        // SAFETY: a live connection and a C string.
        let ptr = unsafe { (self.api.virStorageVolLookupByPath)(self.ptr, c_path.as_ptr()) };
        Ok(
            missing_is_none(self.api, ptr, ERR_NO_STORAGE_VOL)?.map(|p| Volume {
                api: self.api,
                ptr: p,
            }),
        )
    }
}

handle! {
    /// A handle on one domain (a guest).
    Domain(DomainPtr) freed by virDomainFree
}

impl Domain {
    /// Runs a call returning 0 on success and -1 on error.
    fn check(&self, rc: c_int) -> Result<(), LibvirtError> {
        if rc < 0 {
            Err(last_error(self.api))
        } else {
            Ok(())
        }
    }

    pub fn name(&self) -> String {
        // SAFETY: the name belongs to the live domain object; copied.
        unsafe {
            let p = (self.api.virDomainGetName)(self.ptr);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// The `virDomainState` (running, shut off, ...).
    pub fn state(&self) -> Result<c_int, LibvirtError> {
        let (mut state, mut reason) = (0, 0);
        // SAFETY: a live domain and two out-parameters.
        let rc = unsafe { (self.api.virDomainGetState)(self.ptr, &mut state, &mut reason, 0) };
        self.check(rc)?;
        Ok(state)
    }

    /// Whether the guest's qemu process exists (running, paused, ...).
    pub fn is_active(&self) -> Result<bool, LibvirtError> {
        Ok(!matches!(
            self.state()?,
            DOMAIN_SHUTOFF | DOMAIN_CRASHED | DOMAIN_NOSTATE
        ))
    }

    /// Whether the domain is defined (survives being shut off).
    pub fn is_persistent(&self) -> Result<bool, LibvirtError> {
        // SAFETY: a live domain.
        let rc = unsafe { (self.api.virDomainIsPersistent)(self.ptr) };
        self.check(rc)?;
        Ok(rc == 1)
    }

    /// The domain XML (`flags`: e.g. `XML_INACTIVE`).
    pub fn xml(&self, flags: c_uint) -> Result<String, LibvirtError> {
        // SAFETY: libvirt returns a malloc'd C string we copy and free.
        unsafe {
            let p = (self.api.virDomainGetXMLDesc)(self.ptr, flags);
            if p.is_null() {
                return Err(last_error(self.api));
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p.cast());
            Ok(s)
        }
    }

    /// Starts a defined guest.
    pub fn start(&self) -> Result<(), LibvirtError> {
        // SAFETY: a live domain.
        self.check(unsafe { (self.api.virDomainCreate)(self.ptr) })
    }

    /// Pulls the plug.
    pub fn destroy(&self) -> Result<(), LibvirtError> {
        // SAFETY: a live domain.
        self.check(unsafe { (self.api.virDomainDestroy)(self.ptr) })
    }

    /// Asks the guest to shut down (ACPI power button).
    pub fn shutdown(&self) -> Result<(), LibvirtError> {
        // SAFETY: a live domain.
        self.check(unsafe { (self.api.virDomainShutdown)(self.ptr) })
    }

    /// Memory (MiB, the maximum) and virtual CPUs the guest is given.
    pub fn size(&self) -> Result<(u64, u32), LibvirtError> {
        // SAFETY: a live domain and a zeroed out-struct of the C layout.
        unsafe {
            let mut info: RawDomainInfo = std::mem::zeroed();
            if (self.api.virDomainGetInfo)(self.ptr, &mut info) < 0 {
                return Err(last_error(self.api));
            }
            Ok((info.max_mem_kib as u64 / 1024, info.nr_virt_cpu as u32))
        }
    }

    /// Removes the definition (and its managed save, snapshot metadata,
    /// NVRAM); a running guest keeps running as a transient one.
    pub fn undefine(&self) -> Result<(), LibvirtError> {
        // SAFETY: a live domain.
        match self.check(unsafe { (self.api.virDomainUndefineFlags)(self.ptr, UNDEFINE_ALL) }) {
            // Drivers without NVRAM or checkpoints refuse those flags.
            Err(e) if e.code == ERR_INVALID_ARG => {
                // SAFETY: as above.
                self.check(unsafe { (self.api.virDomainUndefineFlags)(self.ptr, 0) })
            }
            other => other,
        }
    }

    /// Presses the reset button.
    pub fn reset(&self) -> Result<(), LibvirtError> {
        // SAFETY: a live domain.
        self.check(unsafe { (self.api.virDomainReset)(self.ptr, 0) })
    }
}

impl Domain {
    /// Opens the guest's serial console as a blocking stream on `conn`
    /// (`flags`: [`CONSOLE_FORCE`] to take it from another session).
    pub fn open_console(&self, conn: &Connection, flags: c_uint) -> Result<Stream, LibvirtError> {
        // SAFETY: a live connection; the new stream is ours to free.
        let ptr = unsafe { (self.api.virStreamNew)(conn.ptr, 0) };
        if ptr.is_null() {
            return Err(last_error(self.api));
        }
        let stream = Stream { api: self.api, ptr };
        // SAFETY: a live domain and stream; NULL names the first console.
        let rc = unsafe {
            (self.api.virDomainOpenConsole)(self.ptr, std::ptr::null(), stream.ptr, flags)
        };
        self.check(rc)?;
        Ok(stream)
    }
}

handle! {
    /// A data stream (a guest's console).
    Stream(StreamPtr) freed by virStreamFree
}

// SAFETY: libvirt streams may be read on one thread while another writes
// (the remote client multiplexes both on the connection's socket).
unsafe impl Sync for Stream {}

impl Stream {
    /// Blocks until the guest prints something: the bytes read, 0 at the
    /// end of the stream.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, LibvirtError> {
        // SAFETY: a live stream and a buffer of `buf.len()` bytes.
        let n = unsafe { (self.api.virStreamRecv)(self.ptr, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(last_error(self.api));
        }
        Ok(n as usize)
    }

    /// Sends all of `data` to the guest's console.
    pub fn send_all(&self, mut data: &[u8]) -> Result<(), LibvirtError> {
        while !data.is_empty() {
            // SAFETY: a live stream and `data.len()` readable bytes.
            let n = unsafe { (self.api.virStreamSend)(self.ptr, data.as_ptr().cast(), data.len()) };
            if n < 0 {
                return Err(last_error(self.api));
            }
            data = &data[n as usize..];
        }
        Ok(())
    }

    /// Ends the stream now (a blocked `recv` returns an error).
    pub fn abort(&self) {
        // SAFETY: a live stream.
        unsafe {
            (self.api.virStreamAbort)(self.ptr);
        }
    }
}

handle! {
    /// A storage pool.
    Pool(PoolPtr) freed by virStoragePoolFree
}

impl Pool {
    /// The volume named `name` in this pool, or None.
    pub fn volume(&self, name: &str) -> Result<Option<Volume>, LibvirtError> {
        let c_name = c_string("volume name", name)?;
        // SAFETY: a live pool and a C string.
        let ptr = unsafe { (self.api.virStorageVolLookupByName)(self.ptr, c_name.as_ptr()) };
        Ok(
            missing_is_none(self.api, ptr, ERR_NO_STORAGE_VOL)?.map(|p| Volume {
                api: self.api,
                ptr: p,
            }),
        )
    }

    /// Creates a volume from its XML.
    pub fn create_volume(&self, xml: &str) -> Result<Volume, LibvirtError> {
        let c_xml = c_string("volume XML", xml)?;
        // SAFETY: a live pool and a C string.
        let ptr = unsafe { (self.api.virStorageVolCreateXML)(self.ptr, c_xml.as_ptr(), 0) };
        if ptr.is_null() {
            return Err(last_error(self.api));
        }
        Ok(Volume { api: self.api, ptr })
    }
}

handle! {
    /// A storage volume (a guest's disk).
    Volume(VolPtr) freed by virStorageVolFree
}

impl Volume {
    /// The volume's path on the hypervisor.
    pub fn path(&self) -> Result<String, LibvirtError> {
        // SAFETY: libvirt returns a malloc'd C string we copy and free.
        unsafe {
            let p = (self.api.virStorageVolGetPath)(self.ptr);
            if p.is_null() {
                return Err(last_error(self.api));
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p.cast());
            Ok(s)
        }
    }

    /// The pool holding this volume.
    pub fn pool(&self) -> Result<Pool, LibvirtError> {
        // SAFETY: a live volume.
        let ptr = unsafe { (self.api.virStoragePoolLookupByVolume)(self.ptr) };
        if ptr.is_null() {
            return Err(last_error(self.api));
        }
        Ok(Pool { api: self.api, ptr })
    }

    pub fn delete(&self) -> Result<(), LibvirtError> {
        // SAFETY: a live volume.
        let rc = unsafe { (self.api.virStorageVolDelete)(self.ptr, 0) };
        if rc < 0 {
            return Err(last_error(self.api));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libvirt's built-in `test:///default` driver (no daemon): a fresh
    /// "test" domain, running, per connection.
    #[test]
    fn test_driver_power_cycle_and_missing_domain() {
        let conn = match Connection::open("test:///default", None) {
            Ok(c) => c,
            Err(e) if e.code == -1 => panic!("libvirt0 is required for this test: {e}"),
            Err(e) => panic!("{e}"),
        };
        assert!(conn.is_alive());
        let dom = conn
            .lookup("test")
            .unwrap()
            .expect("the test driver's domain");
        assert_eq!(dom.name(), "test");
        assert!(dom.is_active().unwrap());
        dom.destroy().unwrap();
        assert!(!dom.is_active().unwrap());
        // Destroying a stopped guest is libvirt's "operation invalid".
        assert_eq!(dom.destroy().unwrap_err().code, ERR_OPERATION_INVALID);
        dom.start().unwrap();
        assert!(dom.is_active().unwrap());
        assert!(dom.xml(XML_INACTIVE).unwrap().contains("<name>test</name>"));
        assert!(conn.lookup("no-such-guest").unwrap().is_none());
        assert_eq!(conn.all_domains().unwrap().len(), 1);
    }

    #[test]
    fn bad_uri_is_an_error_with_libvirts_message() {
        let e = Connection::open("nosuchdriver:///x", None).err().unwrap();
        assert!(!e.message.is_empty());
        assert_ne!(e.code, 0);
    }
}
