using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core;
using Shim.Core.Cli;
using Shim.Os;
using Shim.Os.Io;

namespace Shim.Host;

/// <summary>
/// The `start` action: bind the shim socket, hand it to a daemonised copy of this binary as fd 3,
/// write the bundle's `address` file and print the address. It must be quick: containerd waits for it.
/// </summary>
internal static class StartCommand
{
    public static int Run(ShimArgs args)
    {
        if (args.Namespace.Length == 0)
        {
            throw new ArgumentException("shim namespace cannot be empty");
        }
        if (args.Id.Length == 0)
        {
            throw new ArgumentException("shim id cannot be empty");
        }
        string bundle = Directory.GetCurrentDirectory();
        var input = StartBootstrap.Read(StdStreams.ReadStdin(), args.Id, args.Namespace);
        // containerd 2.x's sandbox controller starts a pod's shim in a bundle without config.json:
        // the pod is its own group, which its containers (annotated with the sandbox id) join
        string config = Path.Combine(bundle, BundleFiles.Config);
        bool podSandbox = !File.Exists(config);
        string group = podSandbox ? args.Id : ShimAddress.GroupOf(File.ReadAllBytes(config), args.Id);
        string socketDir = input.SocketDir ?? ShimAddress.DefaultSocketDir;
        string address = ShimAddress.For(args.Address, args.Namespace, group, socketDir);
        string path = ShimAddress.PathOf(address);
        byte[] answer = StartBootstrap.Answer(input, address, Environment.GetEnvironmentVariable("MAX_SHIM_VERSION") is { Length: > 0 }, podSandbox);
        if (input.IsBootstrap)
        {
            LinkSocketDir(bundle, socketDir);
        }

        var listener = Bind(path);
        if (listener is null)
        {
            // a shim of the same group already serves this socket: containerd connects to it
            Answer(bundle, address, answer);
            return 0;
        }

        if (Environment.GetEnvironmentVariable("SCHED_CORE") is { Length: > 0 })
        {
            EnableCoreScheduling(listener, path);
        }

        var daemonArgs = new List<string> { Environment.ProcessPath ?? "/proc/self/exe", "-namespace", args.Namespace, "-id", args.Id, "-address", args.Address };
        if (args.Debug || input.Debug)
        {
            daemonArgs.Add("-debug");
        }
        int daemon = Spawner.Spawn(new SpawnOptions
        {
            Path = Environment.ProcessPath ?? "/proc/self/exe",
            Args = daemonArgs,
            Environment = DaemonEnvironment(),
            WorkingDirectory = bundle,
            Fds = new Dictionary<int, SafeHandle> { [3] = listener },
            NewProcessGroup = true,
            // the daemon reads SIGTERM/SIGINT from a signalfd; every thread must inherit them blocked
            BlockedSignals = [Signals.SIGTERM, Signals.SIGINT],
        });
        ShimPlacement.AdjustOomScore(daemon, ParentPid());
        string shimCgroup = ShimCgroupOf(input);
        try
        {
            ShimPlacement.MoveToCgroup(daemon, shimCgroup);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // the Go shim fails start here too: a shim outside its configured cgroup escapes its limits
            Signals.Kill(daemon, Signals.SIGKILL);
            throw new InvalidOperationException($"moving shim {daemon} into cgroup {shimCgroup} (ShimCgroup option) failed: {ex.Message}", ex);
        }
        Answer(bundle, address, answer);
        return 0;
    }

    /// <summary>
    /// containerd sets SCHED_CORE for its shims when its sched_core option is on. As containerd's shim
    /// (manager StartShim), the start process gives its process group a core-scheduling cookie just
    /// before it starts the daemon, which inherits it, as do runc and the containers after it: one
    /// pod's processes never share an SMT core with another's. A kernel that cannot fails start, as
    /// with containerd's shim.
    /// </summary>
    private static void EnableCoreScheduling(SafeFileHandle listener, string path)
    {
        try
        {
            ProcessInfo.CreateCoreSchedulingCookieForProcessGroup();
        }
        catch (ErrnoException ex)
        {
            listener.Dispose();
            File.Delete(path);
            throw new InvalidOperationException($"enable sched core support (SCHED_CORE) for the shim's process group: {ex.Message}", ex);
        }
    }

    private static string ShimCgroupOf(StartInput input)
    {
        try
        {
            return Shim.Core.Options.OptionsCodec.Decode(input.Options).ShimCgroup;
        }
        catch (Shim.Core.Errors.ShimException)
        {
            return ""; // unreadable options are reported by Create
        }
    }

    // containerd runs `start`, so its pid is our parent's
    private static int ParentPid()
    {
        string stat = File.ReadAllText("/proc/self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void Answer(string bundle, string address, byte[] answer)
    {
        // 1.x daemons re-read the plain address from here after a restart; 2.x keeps bootstrap.json itself
        File.WriteAllText(Path.Combine(bundle, BundleFiles.Address), address);
        StdStreams.WriteStdout(answer);
    }

    private static void LinkSocketDir(string bundle, string socketDir)
    {
        // 2.3+ daemons find the socket directory through this link when they clean up
        string link = Path.Combine(bundle, "s");
        if (!File.Exists(link) && !Directory.Exists(link))
        {
            File.CreateSymbolicLink(link, socketDir);
        }
    }

    // plain sockets: the .NET socket stack would start its epoll thread for this short-lived process
    private static SafeFileHandle? Bind(string path)
    {
        string dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var listener = UnixSocketFiles.TryListen(path);
        if (listener is null)
        {
            if (UnixSocketFiles.IsServing(path))
            {
                return null;
            }
            File.Delete(path); // stale socket of a dead shim
            listener = UnixSocketFiles.TryListen(path)
                ?? throw new IOException($"bind {path}: address already in use");
        }
        try
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    // a small gen0 budget (256 KiB) keeps the long-lived daemon's heap near 1 MiB (PERFORMANCE.md)
    private static IReadOnlyList<string> DaemonEnvironment() =>
        SpawnEnvironment.Inherit(key => key.StartsWith("DOTNET_GC", StringComparison.Ordinal), "DOTNET_GCgen0size=40000");
}
