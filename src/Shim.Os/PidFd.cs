using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>
/// A pidfd (pidfd_open(2)): it names one process, not a pid number, so a signal sent through it
/// fails with ESRCH once that process has exited, even if the pid was reused meanwhile.
/// </summary>
public sealed class PidFd : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>An invalid handle (for the marshaller); use <see cref="Open"/>.</summary>
    public PidFd()
        : base(ownsHandle: true)
    {
    }

    /// <summary>
    /// Opens a pidfd for <paramref name="pid"/>; null when no such process exists. The caller must
    /// know the pid still names the process it means (e.g. its unreaped child), or the pidfd names whoever has it now.
    /// </summary>
    public static PidFd? Open(int pid)
    {
        int fd = Libc.pidfd_open(pid, 0);
        if (fd < 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.ESRCH)
            {
                return null;
            }
            throw new ErrnoException(errno, $"pidfd_open {pid}");
        }
        FdLimit.Observe(fd);
        var handle = new PidFd();
        handle.SetHandle(fd);
        return handle;
    }

    /// <summary>pidfd_send_signal(2); false when the process has exited (ESRCH), throws <see cref="ErrnoException"/> on other errors.</summary>
    public bool Signal(int signal)
    {
        bool added = false;
        try
        {
            DangerousAddRef(ref added);
            if (Libc.pidfd_send_signal((int)handle, signal, 0, 0) == 0)
            {
                return true;
            }
            int errno = Errno.Last;
            if (errno == Errno.ESRCH)
            {
                return false;
            }
            throw new ErrnoException(errno, $"pidfd_send_signal signal {signal}");
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
