using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>glibc malloc tuning: mallopt and malloc_trim.</summary>
internal static partial class Libc
{
    /// <summary>mallopt parameter: the most arenas malloc creates (glibc malloc.h).</summary>
    internal const int M_ARENA_MAX = -8;

    /// <summary>Returns 1 on success, 0 on error (no errno).</summary>
    [LibraryImport("libc")]
    internal static partial int mallopt(int param, int value);

    /// <summary>Gives free memory of every arena back to the kernel; 1 if any was released.</summary>
    [LibraryImport("libc")]
    internal static partial int malloc_trim(nuint pad);
}
