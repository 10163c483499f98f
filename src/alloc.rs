//! The process's allocator settings. A pass allocates and frees tensors of tens of MB; glibc
//! serves those with fresh mmaps by default, and every page of them is faulted in and zeroed again
//! on first touch: a fifth of a SmolLM2 attribution's time on 2 CPU cores went there.

/// Keeps freed memory in the process for the next tensor instead of handing it back to the kernel
/// (glibc on Linux; elsewhere nothing). The peak footprint is unchanged. Call it first thing in
/// `main`, before any thread starts; the binary and the benches do.
pub fn keep_freed_memory() {
    #[cfg(all(feature = "cli", target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
