using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Terminals;

/// <summary>Passing one file descriptor over a connected unix stream socket (SCM_RIGHTS), as runc's --console-socket does.</summary>
internal static class ScmRights
{
    // runc sends the pty name ("/dev/pts/N") as the data part; anything longer is cut, which is fine.
    private const int NameBufferSize = 4096;

    // Room for a few descriptors, so a sender passing more than one is detected (and its extras
    // closed) instead of turning into MSG_CTRUNC with descriptors silently lost.
    private const int MaxFds = 8;

    /// <summary>One non-blocking recvmsg (MSG_CMSG_CLOEXEC). False if nothing has arrived yet (EAGAIN); otherwise the first descriptor received.</summary>
    /// <exception cref="IOException">The message carried no descriptor, or the peer hung up without sending.</exception>
    internal static unsafe bool TryReceive(SafeHandle socket, out SafeFileHandle? fd, out string name)
    {
        int controlSize = Libc.CmsgSpace(MaxFds * sizeof(int));
        byte* data = stackalloc byte[NameBufferSize];
        byte* control = stackalloc byte[controlSize];
        new Span<byte>(control, controlSize).Clear();
        var iov = new IoVec { Base = data, Length = NameBufferSize };
        var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlSize };

        nint n;
        using (var use = new FdUse(socket))
        {
            do
            {
                n = Libc.recvmsg(use.Fd, &message, Libc.MSG_DONTWAIT | Libc.MSG_CMSG_CLOEXEC);
            }
            while (n < 0 && Errno.Last == Errno.EINTR);
        }
        if (n < 0)
        {
            if (Errno.Last == Errno.EAGAIN)
            {
                fd = null;
                name = string.Empty;
                return false;
            }
            throw ErrnoException.FromLast("recvmsg console socket");
        }

        var received = TakeFds(control, (int)message.ControlLength);
        if ((message.Flags & Libc.MSG_CTRUNC) != 0)
        {
            CloseAll(received, 0);
            throw new IOException("console socket: control message truncated, descriptors lost");
        }
        if (received.Count == 0)
        {
            throw new IOException(n == 0
                ? "console socket: peer hung up without sending a pty master"
                : "console socket: message carried no file descriptor");
        }
        CloseAll(received, 1);   // runc sends exactly one; never leak extras
        fd = received[0];
        name = Encoding.UTF8.GetString(data, (int)n).TrimEnd('\0');
        return true;
    }

    /// <summary>sendmsg of <paramref name="name"/> with <paramref name="fds"/> attached (name must not be empty: a stream socket sends no control data without data).</summary>
    internal static unsafe void Send(SafeHandle socket, string name, params SafeHandle[] fds)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (fds.Length is 0 or > MaxFds)
        {
            throw new ArgumentOutOfRangeException(nameof(fds), fds.Length, $"between 1 and {MaxFds} descriptors");
        }
        byte[] bytes = Encoding.UTF8.GetBytes(name);
        int controlSize = Libc.CmsgSpace(fds.Length * sizeof(int));
        byte* control = stackalloc byte[controlSize];
        new Span<byte>(control, controlSize).Clear();
        *(nuint*)control = (nuint)Libc.CmsgLen(fds.Length * sizeof(int));
        *(int*)(control + 8) = Libc.SOL_SOCKET;
        *(int*)(control + 12) = Libc.SCM_RIGHTS;
        var uses = new FdUse[fds.Length];
        int held = 0;
        try
        {
            for (; held < fds.Length; held++)
            {
                uses[held] = new FdUse(fds[held]);
                ((int*)(control + Libc.CmsgHeaderSize))[held] = uses[held].Fd;
            }
            using var socketUse = new FdUse(socket);
            fixed (byte* data = bytes)
            {
                var iov = new IoVec { Base = data, Length = (nuint)bytes.Length };
                var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlSize };
                nint n;
                do
                {
                    n = Libc.sendmsg(socketUse.Fd, &message, Libc.MSG_NOSIGNAL);
                }
                while (n < 0 && Errno.Last == Errno.EINTR);
                if (n < 0)
                {
                    throw ErrnoException.FromLast("sendmsg console socket");
                }
                if (n != bytes.Length)
                {
                    throw new IOException($"console socket: short send ({n} of {bytes.Length} bytes)");
                }
            }
        }
        finally
        {
            for (int i = 0; i < held; i++)
            {
                uses[i].Dispose();
            }
        }
    }

    private static unsafe List<SafeFileHandle> TakeFds(byte* control, int length)
    {
        var fds = new List<SafeFileHandle>(1);
        int offset = 0;
        while (offset + Libc.CmsgHeaderSize <= length)
        {
            int cmsgLength = (int)*(nuint*)(control + offset);
            if (cmsgLength < Libc.CmsgHeaderSize || offset + cmsgLength > length)
            {
                break;
            }
            int level = *(int*)(control + offset + 8);
            int type = *(int*)(control + offset + 12);
            if (level == Libc.SOL_SOCKET && type == Libc.SCM_RIGHTS)
            {
                int count = (cmsgLength - Libc.CmsgHeaderSize) / sizeof(int);
                int* numbers = (int*)(control + offset + Libc.CmsgHeaderSize);
                for (int i = 0; i < count; i++)
                {
                    fds.Add(new SafeFileHandle(numbers[i], ownsHandle: true));
                }
            }
            offset += Libc.CmsgAlign(cmsgLength);
        }
        return fds;
    }

    private static void CloseAll(List<SafeFileHandle> fds, int from)
    {
        for (int i = from; i < fds.Count; i++)
        {
            fds[i].Dispose();
        }
    }
}
