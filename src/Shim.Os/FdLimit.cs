using System.Globalization;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>
/// The descriptor limit (RLIMIT_NOFILE) of the serving shim and of what it starts.
/// </summary>
/// <remarks>
/// containerd 2.x's service unit leaves the soft limit at systemd's 1024, and containerd hands its
/// shims the limit it was started with. A grouped shim holds several descriptors per live process
/// (stdio FIFOs, the pipes behind them, a pidfd), so a pod's shim would hit EMFILE at around a
/// hundred processes. Go raises its own soft limit to the hard one at start and gives the
/// processes it starts the original (syscall/rlimit.go); containerd's shim inherits that.
///
/// This shim raises the soft limit when the descriptor numbers it is handed reach three quarters
/// of it (<see cref="Observe"/>: the kernel hands out the lowest free number, so a high number
/// means that many are open). Until then its children inherit the original limit as they are;
/// after it, they are started through <see cref="ExecWithOriginalLimit"/> (this binary, which
/// sets the original limit back and execs the program: posix_spawn cannot set a child's limit,
/// and lowering our own around each spawn would make every other thread's open fail meanwhile).
/// Raising at start, as Go does, would put that extra exec in front of every runc call under
/// containerd 2.x; raising late costs nothing until a shim really holds that many descriptors.
/// </remarks>
public static class FdLimit
{
    /// <summary>The first argument that makes this binary <see cref="ExecWithOriginalLimit"/> instead of a shim.</summary>
    public const string ExecCommand = "exec-with-nofile";

    private static readonly object Gate = new();
    private static ulong s_originalSoft;
    private static ulong s_originalHard;
    private static int s_raiseAt = int.MaxValue;   // no policy until Init: tests and the CLI commands never raise
    private static volatile bool s_raised;
    private static string? s_self;
    private const string SelfExe = "/proc/self/exe";

    /// <summary>The serving shim: remembers the limit it was started with and this binary's path, and arms the raise.</summary>
    public static unsafe void Init()
    {
        ulong* limit = stackalloc ulong[2];
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, limit) < 0)
        {
            throw ErrnoException.FromLast("getrlimit RLIMIT_NOFILE");
        }
        s_originalSoft = limit[0];
        s_originalHard = limit[1];
        s_self = Environment.ProcessPath;
        if (limit[0] < limit[1] && limit[0] <= int.MaxValue && s_self is not null)
        {
            s_raiseAt = (int)(limit[0] / 4 * 3);
        }
    }

    /// <summary>Notes a descriptor number just handed out; at three quarters of the soft limit, raises it to the hard one.</summary>
    public static void Observe(int fd)
    {
        if (fd >= s_raiseAt && !s_raised)
        {
            Raise();
        }
    }

    private static unsafe void Raise()
    {
        lock (Gate)
        {
            if (s_raised)
            {
                return;
            }
            ulong* limit = stackalloc ulong[2];
            limit[0] = s_originalHard;
            limit[1] = s_originalHard;
            // nothing to do on failure: the next open past the limit fails with EMFILE, as before
            s_raised = Libc.setrlimit(Libc.RLIMIT_NOFILE, limit) == 0;
            s_raiseAt = int.MaxValue;
        }
    }

    /// <summary>How to start <paramref name="path"/> with <paramref name="args"/> so it gets the original limit: through this binary once raised.</summary>
    internal static (string Path, IReadOnlyList<string> Args) Route(string path, IReadOnlyList<string> args)
    {
        if (!s_raised || s_self is null)
        {
            return (path, args);
        }
        // /proc/self/exe in the child is this binary even if an upgrade replaced the file since
        var routed = new List<string>(args.Count + 5)
        {
            s_self,
            ExecCommand,
            s_originalSoft.ToString(CultureInfo.InvariantCulture),
            s_originalHard.ToString(CultureInfo.InvariantCulture),
            path,
        };
        routed.AddRange(args);
        return (SelfExe, routed);
    }

    /// <summary>
    /// This binary as <c>exec-with-nofile SOFT HARD PATH ARGV0 ARGS...</c>: sets RLIMIT_NOFILE and
    /// execs PATH with the rest as its argv and this process's environment. Returns only on
    /// failure, with the exit status a shell gives a command it cannot run (127), after saying why.
    /// </summary>
    public static unsafe int ExecWithOriginalLimit(IReadOnlyList<string> args, Action<string> error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(error);
        if (args.Count < 5 || args[0] != ExecCommand
            || !ulong.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong soft)
            || !ulong.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out ulong hard))
        {
            error($"{ExecCommand}: usage: {ExecCommand} SOFT HARD PATH ARGV0 [ARGS...]");
            return 2;
        }
        ulong* limit = stackalloc ulong[2];
        limit[0] = soft;
        limit[1] = hard;
        if (Libc.setrlimit(Libc.RLIMIT_NOFILE, limit) < 0)
        {
            error($"{ExecCommand}: setting the descriptor limit to {soft}:{hard} for {args[3]} failed: {ErrnoException.FromLast("setrlimit").Message}");
            return 127;
        }
        byte** argv = NativeStrings.Array([.. args.Skip(4)], out var argvOwner);
        using (argvOwner)
        {
            byte** envp = NativeStrings.Array(SpawnEnvironment.Inherit(), out var envOwner);
            using (envOwner)
            {
                byte* path = NativeStrings.Single(args[3], out var pathOwner);
                using (pathOwner)
                {
                    _ = Libc.execve(path, argv, envp);
                    error($"{ExecCommand}: running {args[3]} failed: {ErrnoException.FromLast("execve").Message}");
                    return 127;
                }
            }
        }
    }
}
