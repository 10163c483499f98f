//! Process-wide settings for numeric work on the CPU, made once, first thing in `main`, before any
//! thread starts; the binary and the benches call [`configure`]. A library user may call it too.

/// Applies [`keep_freed_memory`] and [`park_idle_workers`].
pub fn configure() {
    keep_freed_memory();
    park_idle_workers();
}

/// Keeps freed memory in the process for the next tensor instead of handing it back to the kernel
/// (glibc on Linux; elsewhere nothing). A pass allocates and frees tensors of tens of MB; glibc
/// serves those with fresh mmaps by default, and every page of them is faulted in and zeroed again
/// on first touch: a fifth of a SmolLM2 attribution's time on 2 CPU cores went there. The peak
/// footprint is unchanged.
pub fn keep_freed_memory() {
    #[cfg(all(feature = "cli", target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// How many times candle's elementwise worker spins for its next op before it sleeps, unless
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set. candle's default (25,000) keeps that worker busy
/// between ops, on a core that the matrix products' threads need: on 2 cores it was 27 % of a
/// SmolLM2 backward's CPU time (`perf`), and a short spin made the 1 × 128 forward 1.3× faster.
const WORKER_SPIN_LIMIT: &str = "100";

/// Lets candle's elementwise worker sleep soon after its op (a spin of 100 instead of 25,000), so
/// that it does not spin on a core the matrix products need. It must run before candle's first
/// parallel op, which reads the setting once.
pub fn park_idle_workers() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, WORKER_SPIN_LIMIT);
    }
}
