using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>mount(2), umount2(2), statvfs(3), the new mount API, openat2(2), unshare(2) and chdir(2).</summary>
internal static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string? source, string target, string? fsType, nuint flags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int umount2(string target, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statvfs(string path, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int chdir(string path);

    // syscall(2) is variadic; every argument below is an integer or pointer and travels in an
    // integer register on x64 and arm64, so fixed declarations per arity are ABI-compatible.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall4(long number, nint a1, nint a2, nint a3, nint a4);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    internal static partial long syscall5(long number, nint a1, nint a2, nint a3, nint a4, nint a5);
}
