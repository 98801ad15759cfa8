using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Sending signals.</summary>
public static class Signals
{
    /// <summary>SIGKILL.</summary>
    public const int SIGKILL = Libc.SIGKILL;
    /// <summary>SIGTERM.</summary>
    public const int SIGTERM = Libc.SIGTERM;
    /// <summary>SIGINT.</summary>
    public const int SIGINT = Libc.SIGINT;
    /// <summary>SIGCHLD.</summary>
    public const int SIGCHLD = Libc.SIGCHLD;
    /// <summary>SIGUSR1.</summary>
    public const int SIGUSR1 = Libc.SIGUSR1;

    /// <summary>kill(2); false when the process does not exist (ESRCH), throws <see cref="ErrnoException"/> on other errors.</summary>
    public static bool Kill(int pid, int signal)
    {
        if (Libc.kill(pid, signal) == 0)
        {
            return true;
        }
        int errno = Errno.Last;
        if (errno == Errno.ESRCH)
        {
            return false;
        }
        throw new ErrnoException(errno, $"kill {pid} signal {signal}");
    }
}
