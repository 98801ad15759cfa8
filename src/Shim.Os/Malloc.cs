using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>
/// The C heap of this process (glibc malloc). Set through mallopt rather than MALLOC_ARENA_MAX:
/// an environment variable would reach runc and every process the shim spawns.
/// </summary>
public static class Malloc
{
    /// <summary>
    /// Caps the malloc arenas. glibc gives each new thread its own arena (up to 8 per core), and
    /// every thread-pool thread that ever ran keeps one: tens of KiB each, never returned.
    /// Threads that already own an arena keep it; later ones share. False if glibc refused.
    /// </summary>
    public static bool LimitArenas(int max) => Libc.mallopt(Libc.M_ARENA_MAX, max) == 1;

    /// <summary>Returns the free pages of every arena to the kernel; true if anything was released.</summary>
    public static bool Trim() => Libc.malloc_trim(0) == 1;
}
