using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Facts about this process and its peers.</summary>
public static class ProcessInfo
{
    /// <summary>getpid(2).</summary>
    public static int Pid => Libc.getpid();

    /// <summary>geteuid(2).</summary>
    public static int EffectiveUid => (int)Libc.geteuid();

    /// <summary>getegid(2).</summary>
    public static int EffectiveGid => (int)Libc.getegid();

    /// <summary>SO_PEERCRED of a connected unix socket.</summary>
    public static (int Pid, int Uid, int Gid) PeerCredentials(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return PeerCredentials(socket.SafeHandle);
    }

    /// <summary>SO_PEERCRED of a connected unix socket given as its fd.</summary>
    public static unsafe (int Pid, int Uid, int Gid) PeerCredentials(SafeHandle socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        byte* ucred = stackalloc byte[12];
        uint length = 12;
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            if (Libc.getsockopt((int)socket.DangerousGetHandle(), Libc.SOL_SOCKET, Libc.SO_PEERCRED, ucred, &length) < 0)
            {
                throw ErrnoException.FromLast("getsockopt SO_PEERCRED");
            }
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
        if (length < 12)
        {
            throw new ErrnoException(Errno.EINVAL, "getsockopt SO_PEERCRED");
        }
        var span = new ReadOnlySpan<byte>(ucred, 12);
        return (BinaryPrimitives.ReadInt32LittleEndian(span),
                BinaryPrimitives.ReadInt32LittleEndian(span[4..]),
                BinaryPrimitives.ReadInt32LittleEndian(span[8..]));
    }

    /// <summary>prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to us.</summary>
    public static void SetChildSubreaper()
    {
        if (Libc.prctl(Libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        {
            throw ErrnoException.FromLast("prctl PR_SET_CHILD_SUBREAPER");
        }
    }

    /// <summary>
    /// prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, 0, PIDTYPE_PGID): a new core-scheduling cookie for
    /// the caller's whole process group; processes forked afterwards inherit it, and only tasks with
    /// the same cookie share an SMT core (kernel Documentation/admin-guide/hw-vuln/core-scheduling.rst).
    /// Fails with EINVAL on a kernel built without CONFIG_SCHED_CORE and ENODEV on a machine without SMT.
    /// </summary>
    public static void CreateCoreSchedulingCookieForProcessGroup()
    {
        if (Libc.prctl(Libc.PR_SCHED_CORE, Libc.PR_SCHED_CORE_CREATE, 0, Libc.PIDTYPE_PGID, 0) < 0)
        {
            throw ErrnoException.FromLast("prctl PR_SCHED_CORE_CREATE");
        }
    }

    /// <summary>prctl(PR_GET_CHILD_SUBREAPER).</summary>
    public static unsafe bool IsChildSubreaper()
    {
        int value = 0;
        if (Libc.prctl(Libc.PR_GET_CHILD_SUBREAPER, (nuint)(&value), 0, 0, 0) < 0)
        {
            throw ErrnoException.FromLast("prctl PR_GET_CHILD_SUBREAPER");
        }
        return value != 0;
    }

    /// <summary>Reads /proc/&lt;pid&gt;/oom_score_adj.</summary>
    public static int ReadOomScoreAdj(int pid) =>
        int.Parse(File.ReadAllText($"/proc/{pid}/oom_score_adj").Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    /// <summary>Writes /proc/self/oom_score_adj.</summary>
    public static void WriteOwnOomScoreAdj(int value) =>
        File.WriteAllText("/proc/self/oom_score_adj", value.ToString(CultureInfo.InvariantCulture));
}
