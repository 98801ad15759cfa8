using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>Starts children with posix_spawn(3).</summary>
public static class Spawner
{
    private static readonly Dictionary<int, SafeHandle> NoFds = [];

    // Set once glibc turns out to predate posix_spawn_file_actions_addclosefrom_np (2.34).
    private static volatile bool s_noCloseFrom;

    /// <summary>posix_spawn a child (signal mask cleared unless <see cref="SpawnOptions.BlockedSignals"/>, all signals reset to default in the child); returns its pid. Does not wait.</summary>
    public static unsafe int Spawn(SpawnOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!System.IO.Path.IsPathRooted(options.Path))
        {
            throw new ArgumentException($"executable path must be absolute: {options.Path}", nameof(options));
        }
        if (options.Args.Count == 0)
        {
            throw new ArgumentException("argv must contain at least argv[0]", nameof(options));
        }

        IReadOnlyDictionary<int, SafeHandle> fds = options.Fds ?? NoFds;
        var held = new List<SafeHandle>(fds.Count);
        void* actions = null;
        void* attr = null;
        try
        {
            var targets = new int[fds.Count];
            var sources = new int[fds.Count];
            int n = 0;
            foreach (var (target, handle) in fds)
            {
                if (target < 0)
                {
                    throw new ArgumentException($"invalid child fd {target}", nameof(options));
                }
                bool added = false;
                handle.DangerousAddRef(ref added);
                held.Add(handle);
                targets[n] = target;
                sources[n] = (int)handle.DangerousGetHandle();
                n++;
            }

            actions = NativeMemory.AllocZeroed(Libc.SpawnFileActionsSize);
            attr = NativeMemory.AllocZeroed(Libc.SpawnAttrSize);
            Check(Libc.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(Libc.posix_spawnattr_init(attr), "posix_spawnattr_init");
            AddFileActions(actions, options.WorkingDirectory, targets, sources);
            SetAttributes(attr, options);

            // once the shim raised its descriptor limit, children get the original one through this binary
            var (file, args) = FdLimit.Route(options.Path, options.Args);
            byte** argv = NativeStrings.Array(args, out var argvOwner);
            using (argvOwner)
            {
                byte** envp = NativeStrings.Array(options.Environment ?? SpawnEnvironment.Inherit(), out var envOwner);
                using (envOwner)
                {
                    byte* path = NativeStrings.Single(file, out var pathOwner);
                    using (pathOwner)
                    {
                        int err = Libc.posix_spawn(out int pid, path, actions, attr, argv, envp);
                        if (err != 0)
                        {
                            throw new ErrnoException(err, $"posix_spawn {options.Path}");
                        }
                        return pid;
                    }
                }
            }
        }
        finally
        {
            if (actions != null)
            {
                _ = Libc.posix_spawn_file_actions_destroy(actions);   // glibc: always 0
                NativeMemory.Free(actions);
            }
            if (attr != null)
            {
                _ = Libc.posix_spawnattr_destroy(attr);   // glibc: always 0
                NativeMemory.Free(attr);
            }
            foreach (var handle in held)
            {
                handle.DangerousRelease();
            }
        }
    }

    // Every source is first dup'ed to a scratch fd above all sources and targets, then to its
    // target. That makes swaps (a source number equal to another target) and one source feeding
    // several targets safe, and dup2 onto a different number always clears FD_CLOEXEC.
    private static unsafe void AddFileActions(void* actions, string? workingDirectory, int[] targets, int[] sources)
    {
        if (workingDirectory is not null)
        {
            byte* dir = NativeStrings.Single(workingDirectory, out var dirOwner);
            using (dirOwner)
            {
                Check(Libc.posix_spawn_file_actions_addchdir_np(actions, dir), "posix_spawn_file_actions_addchdir_np");
            }
        }

        int maxTarget = 2;
        int maxFd = 2;
        for (int i = 0; i < targets.Length; i++)
        {
            maxTarget = Math.Max(maxTarget, targets[i]);
            maxFd = Math.Max(maxFd, Math.Max(targets[i], sources[i]));
        }
        int scratch = maxFd + 1;

        for (int i = 0; i < targets.Length; i++)
        {
            Check(Libc.posix_spawn_file_actions_adddup2(actions, sources[i], scratch + i), "posix_spawn_file_actions_adddup2");
        }
        for (int i = 0; i < targets.Length; i++)
        {
            Check(Libc.posix_spawn_file_actions_adddup2(actions, scratch + i, targets[i]), "posix_spawn_file_actions_adddup2");
        }
        byte* devNull = NativeStrings.Single("/dev/null", out var devNullOwner);
        using (devNullOwner)
        {
            for (int fd = 0; fd <= 2; fd++)
            {
                if (Array.IndexOf(targets, fd) < 0)
                {
                    Check(Libc.posix_spawn_file_actions_addopen(actions, fd, devNull, Libc.O_RDWR, 0), "posix_spawn_file_actions_addopen");
                }
            }
        }
        for (int i = 0; i < targets.Length; i++)
        {
            Check(Libc.posix_spawn_file_actions_addclose(actions, scratch + i), "posix_spawn_file_actions_addclose");
        }
        // Gaps between targets: glibc ignores EBADF from close actions on valid fd numbers.
        for (int fd = 3; fd < maxTarget; fd++)
        {
            if (Array.IndexOf(targets, fd) < 0)
            {
                Check(Libc.posix_spawn_file_actions_addclose(actions, fd), "posix_spawn_file_actions_addclose");
            }
        }
        // Belt and braces against fds some native library opened without O_CLOEXEC.
        if (!s_noCloseFrom)
        {
            try
            {
                Check(Libc.posix_spawn_file_actions_addclosefrom_np(actions, maxTarget + 1), "posix_spawn_file_actions_addclosefrom_np");
            }
            catch (EntryPointNotFoundException)
            {
                s_noCloseFrom = true;
            }
        }
    }

    private static unsafe void SetAttributes(void* attr, SpawnOptions options)
    {
        byte* mask = stackalloc byte[Libc.SigsetSize];
        byte* full = stackalloc byte[Libc.SigsetSize];
        _ = Libc.sigemptyset(mask);   // these fail only for a null mask
        _ = Libc.sigfillset(full);
        foreach (int signal in options.BlockedSignals ?? [])
        {
            if (Libc.sigaddset(mask, signal) != 0)
            {
                throw new ArgumentException($"invalid signal {signal}", nameof(options));
            }
        }
        Check(Libc.posix_spawnattr_setsigmask(attr, mask), "posix_spawnattr_setsigmask");
        Check(Libc.posix_spawnattr_setsigdefault(attr, full), "posix_spawnattr_setsigdefault");

        short flags = Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF;
        if (options.NewSession)
        {
            // setsid already makes a new group; a later setpgid(0,0) on a session leader fails with EPERM.
            flags |= Libc.POSIX_SPAWN_SETSID;
        }
        else if (options.NewProcessGroup)
        {
            flags |= Libc.POSIX_SPAWN_SETPGROUP;
            Check(Libc.posix_spawnattr_setpgroup(attr, 0), "posix_spawnattr_setpgroup");
        }
        Check(Libc.posix_spawnattr_setflags(attr, flags), "posix_spawnattr_setflags");
    }

    private static void Check(int err, string operation)
    {
        if (err != 0)
        {
            throw new ErrnoException(err, operation);
        }
    }
}
