using System.Text;
using Shim.Os.Interop;

namespace Shim.Os.Namespaces;

/// <summary>Which namespaces of its own a pod gets; the ones not named are the node's.</summary>
[Flags]
public enum NewNamespaces
{
    /// <summary>All the node's.</summary>
    None = 0,
    /// <summary>A UTS namespace: the pod's hostname.</summary>
    Uts = 1,
    /// <summary>An IPC namespace: the pod's SysV IPC and POSIX message queues.</summary>
    Ipc = 2,
    /// <summary>A pid namespace whose PID 1 is the holder, shared by the pod's containers.</summary>
    Pid = 4,
}

/// <summary>
/// The calls that put the calling process into a pod's namespaces: join its network namespace,
/// make new UTS, IPC and pid namespaces, name the host and set the pod's sysctls there. Each
/// throws <see cref="ErrnoException"/> naming what it tried.
/// </summary>
public static class PodNamespaces
{
    /// <summary>setns(2) into the network namespace bound at <paramref name="path"/> (a /var/run/netns file).</summary>
    public static void JoinNetwork(string path)
    {
        using var fd = Fds.Open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (Libc.setns((int)fd.DangerousGetHandle(), Libc.CLONE_NEWNET) < 0)
        {
            throw ErrnoException.FromLast($"setns network namespace {path}");
        }
    }

    /// <summary>unshare(2) of the namespaces named; a new pid namespace takes the next child as its PID 1, not the caller.</summary>
    public static void Unshare(NewNamespaces namespaces)
    {
        int flags = (namespaces.HasFlag(NewNamespaces.Uts) ? Libc.CLONE_NEWUTS : 0)
            | (namespaces.HasFlag(NewNamespaces.Ipc) ? Libc.CLONE_NEWIPC : 0)
            | (namespaces.HasFlag(NewNamespaces.Pid) ? Libc.CLONE_NEWPID : 0);
        if (flags != 0 && Libc.unshare(flags) < 0)
        {
            throw ErrnoException.FromLast($"unshare {namespaces} namespaces");
        }
    }

    /// <summary>sethostname(2) in the caller's UTS namespace.</summary>
    public static unsafe void SetHostname(string name)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(name);
        fixed (byte* p = bytes)
        {
            if (Libc.sethostname(p, (nuint)bytes.Length) < 0)
            {
                throw ErrnoException.FromLast($"sethostname \"{name}\"");
            }
        }
    }

    /// <summary>
    /// Writes a sysctl (dotted name, as Kubernetes gives it) under /proc/sys. net.* and the IPC
    /// sysctls resolve to the namespaces of the writing process (proc_sys_root in the kernel), so
    /// this is called after <see cref="JoinNetwork"/> and <see cref="Unshare"/>.
    /// </summary>
    public static void SetSysctl(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name.Contains("..", StringComparison.Ordinal) || name.Contains('/', StringComparison.Ordinal) || name[0] == '.')
        {
            throw new ArgumentException($"sysctl \"{name}\" is not a sysctl name", nameof(name));
        }
        string path = "/proc/sys/" + name.Replace('.', '/');
        try
        {
            File.WriteAllText(path, value);
        }
        catch (IOException ex)
        {
            throw new IOException($"set sysctl {name}={value} ({path}): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Holds the namespaces until killed: waits for SIGCHLD on a signalfd and reaps every child
    /// (as PID 1 of a shared pid namespace, the orphans of every container). SIGCHLD must be
    /// blocked in every thread (spawn with it in <see cref="SpawnOptions.BlockedSignals"/>).
    /// </summary>
    public static unsafe void HoldAndReap()
    {
        byte* mask = stackalloc byte[Libc.SigsetSize];
        _ = Libc.sigemptyset(mask);
        _ = Libc.sigaddset(mask, Libc.SIGCHLD);
        int fd = Libc.signalfd(-1, mask, Libc.SFD_CLOEXEC);
        if (fd < 0)
        {
            throw ErrnoException.FromLast("signalfd SIGCHLD");
        }
        byte* info = stackalloc byte[Libc.SignalfdSiginfoSize];
        while (true)
        {
            while (Libc.wait4(-1, out _, Libc.WNOHANG, 0) > 0)
            {
            }
            // blocks until the next child exits; EINTR (a stop signal) just loops
            _ = Libc.read(fd, info, Libc.SignalfdSiginfoSize);
        }
    }
}
