namespace Shim.Os.Interop;

// Numbers for terminals and SCM_RIGHTS, kept apart from Constants.cs. x64 and arm64 both use
// the asm-generic tty ioctls and the LP64 socket structures, so every value below holds on both.

internal static partial class Libc
{
    // tty ioctls (asm-generic/ioctls.h)
    internal const nuint TIOCGWINSZ = 0x5413;
    internal const nuint TIOCSWINSZ = 0x5414;
    internal const nuint TIOCGPTN = 0x80045430;    // _IOR('T', 0x30, unsigned int)
    internal const nuint TIOCSPTLCK = 0x40045431;  // _IOW('T', 0x31, int)
    internal const nuint FIONREAD = 0x541B;        // bytes unread in a pipe or FIFO too

    // send/recv flags (glibc bits/socket.h)
    internal const int MSG_CTRUNC = 0x8;
    internal const int MSG_DONTWAIT = 0x40;
    internal const int MSG_NOSIGNAL = 0x4000;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;

    // ancillary data: struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then
    // the data, every header aligned to sizeof(size_t).
    internal const int SCM_RIGHTS = 1;
    internal const int CmsgHeaderSize = 16;
    internal const int CmsgAlignment = 8;

    /// <summary>sizeof(struct sockaddr_un.sun_path); a path needs one byte for its terminator.</summary>
    internal const int SunPathSize = 108;

    /// <summary>CMSG_SPACE(n): header plus n data bytes, padded.</summary>
    internal static int CmsgSpace(int dataBytes) => CmsgHeaderSize + CmsgAlign(dataBytes);

    /// <summary>CMSG_LEN(n): header plus n data bytes, unpadded (the cmsg_len value).</summary>
    internal static int CmsgLen(int dataBytes) => CmsgHeaderSize + dataBytes;

    /// <summary>CMSG_ALIGN.</summary>
    internal static int CmsgAlign(int length) => (length + CmsgAlignment - 1) & ~(CmsgAlignment - 1);
}
