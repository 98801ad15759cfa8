using System.Runtime.InteropServices;

namespace Shim.Os.Interop;

/// <summary>Terminals (ioctl, isatty) and fd passing over unix sockets (sendmsg, recvmsg); mkdtemp for the console socket dir.</summary>
internal static unsafe partial class Libc
{
    // ioctl is variadic; the third argument travels in an integer register on x64 and arm64.
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int isatty(int fd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint recvmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    /// <summary>Replaces the trailing "XXXXXX" of template in place and creates the directory with mode 0700.</summary>
    [LibraryImport("libc", SetLastError = true)]
    internal static partial byte* mkdtemp(byte* template);
}

/// <summary>struct msghdr (glibc, LP64: 56 bytes; sequential layout supplies the padding after msg_namelen).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    internal void* Name;
    internal uint NameLength;
    internal IoVec* Iov;
    internal nuint IovLength;
    internal void* Control;
    internal nuint ControlLength;
    internal int Flags;
}

/// <summary>struct iovec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    internal void* Base;
    internal nuint Length;
}

/// <summary>struct winsize.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct WinSize
{
    internal ushort Rows;
    internal ushort Columns;
    internal ushort XPixels;
    internal ushort YPixels;
}
