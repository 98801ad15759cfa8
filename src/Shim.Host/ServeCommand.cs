using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core.Cli;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Logging;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Core.Stdio;
using Shim.Core.Transport;
using Shim.Os;
using Shim.Runc;
using Shim.Ttrpc;
using Shim.Os.Io;
using Shim.Ttrpc.Transport;

namespace Shim.Host;

/// <summary>The long-lived server: subreaper, task service on the inherited socket, events to containerd.</summary>
internal static class ServeCommand
{
    /// <summary>Serves until shutdown, then exits the process; the calling (main) thread becomes the reaper.</summary>
    public static int Run(ShimArgs args)
    {
        // Checked on the main thread before anything else runs: `start` spawns us with these blocked.
        bool signalsBlocked = SignalFd.AreBlocked(Signals.SIGTERM, Signals.SIGINT);
        // one arena is plenty for a shim's few mallocs; per-thread arenas stay resident (Malloc.LimitArenas)
        Malloc.LimitArenas(1);
        // raised when the shim comes to need it; what it starts keeps the limit containerd gave it
        FdLimit.Init();
        // the composition root: the process's one reaper and one io-loop are taken here and passed on
        var reaper = Reaper.Instance;
        // Every socket of the daemon waits on the io-loop: no .NET socket engine thread.
        var loop = IoLoop.Shared;
        var log = OpenLog(args);
        reaper.RunOnCurrentThread(() =>
            Task.Run(() => RunAsync(args, signalsBlocked, reaper, loop, log)).ContinueWith(
                t =>
                {
                    if (t.IsFaulted)
                    {
                        log.Error("serving failed", ShimLog.Field("error", t.Exception is { } ex ? StatusMapping.Describe(ex) : null));
                    }
                    Environment.Exit(t.IsCompletedSuccessfully ? t.Result : 1);
                },
                TaskScheduler.Default));
        return 0; // not reached: the reaper loop never returns
    }

    // how long the shim must be without calls before it gives memory back (bench.py measures 2 s
    // after the last exec), and when again: after idle pool workers retired (2 s, Shim.Host.csproj)
    private static readonly TimeSpan TrimAfterQuiet = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan TrimLate = TimeSpan.FromSeconds(5);
    // and only once this much was allocated since the last trim (4 of the 256 KiB gen0 budgets
    // StartCommand gives the daemon): spaced exec probes share one trim instead of one each
    private const long TrimAfterAllocated = 1 << 20;

    private static async Task<int> RunAsync(ShimArgs args, bool signalsBlocked, Reaper reaper, IoLoop loop, ShimLogger log)
    {
        var settings = new ShimSettings
        {
            Namespace = args.Namespace,
            Id = args.Id,
            Address = args.Address,
            TtrpcAddress = Environment.GetEnvironmentVariable("TTRPC_ADDRESS") ?? args.Address + ".ttrpc",
            Debug = args.Debug,
            RuncCallTimeout = EnvironmentSettings.RuncCallTimeout(log),
        };
        // a callback that throws is contained by the loop; it must not also go unnoticed
        loop.CallbackFailed += ex => log.Error("io-loop callback failed", ShimLog.Field("error", ex.ToString()));
        using var listener = args.Socket.Length > 0
            ? LoopListener.Bind(loop, ShimAddress.PathOf(args.Socket))
            : InheritedListener(loop);
        string? socketPath = listener.LocalPath;

#pragma warning disable CA2007 // an executable with no SynchronizationContext: nothing for ConfigureAwait to avoid on disposal
        await using var events = new TtrpcEventPublisher(
            settings.TtrpcAddress, settings.Namespace, (path, ct) => LoopTtrpcConnection.ConnectAsync(loop, path, ct), log);
        var router = new ExitRouter();
        using var exits = reaper.Subscribe();
        using var stop = new CancellationTokenSource();
        var exitLoop = router.RunAsync(exits, stop.Token);

        using var oom = new Shim.Core.Cgroups.OomWatcher(loop);
        // the one loop and the one reaper of the shim carry every process's stdio too
        var stdio = new StdioContext(loop, reaper, TimeProvider.System) { Log = log };
        // one runner for every child the services run (runc, the pod's namespace holder)
        var runner = new RuncRunner(reaper, loop);
        var service = new TaskService(settings, events, runner, router, stdio, oom);
        var registry = new TtrpcServiceRegistry();
        service.Register(registry);
        // containerd 2.x's shim sandboxer: the pod itself, beside its containers' tasks
        new SandboxService(runner, router, log, service).Register(registry);
        using var trimmer = new Shim.Core.Memory.IdleTrimmer(
            TrimAfterQuiet, TrimLate, Shim.Core.Memory.IdleTrimmer.TrimProcess, TimeProvider.System,
            static () => GC.GetTotalAllocatedBytes(precise: false), TrimAfterAllocated, log);
        await using var server = new TtrpcServer(registry, new TtrpcServerOptions
        {
            AcceptFilter = connection => SamePeerUser(connection, log),
            Activity = trimmer.Touch,
            ErrorMapper = StatusMapping.ToStatus,
            Log = message => log.Debug(message),
            // a bound being hit is worth a line at the default level; the server sends one per burst
            Warn = message => log.Warn(message),
            DescribePeer = DescribePeer,
            MaxConnections = EnvironmentSettings.MaxConnections(log, TtrpcServerOptions.DefaultMaxConnections),
            MaxRequestsInFlight = EnvironmentSettings.MaxRequestsInFlight(log, TtrpcServerOptions.DefaultMaxRequestsInFlight),
            FrameTimeout = EnvironmentSettings.FrameTimeout(log, TtrpcServerOptions.DefaultFrameTimeout),
        });
#pragma warning restore CA2007

        using var signals = ListenForStop(loop, signalsBlocked, stop);

        log.Info("shim serving", ShimLog.Field("socket", socketPath));
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var onStop = stop.Token.Register(() => stopped.TrySetResult());
        var serving = server.ServeAsync(new LoopTtrpcListener(listener), stop.Token);
        await Task.WhenAny(service.ShutdownRequested, stopped.Task, serving).ConfigureAwait(false);

        log.Info("shim shutting down");
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                await server.ShutdownAsync(grace.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                log.Warn("calls still running at shutdown");
            }
        }
        await events.FlushAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        await exitLoop.ConfigureAwait(false);
        if (socketPath is { Length: > 0 })
        {
            File.Delete(socketPath);
        }
        return 0;
    }

    private static IDisposable ListenForStop(IoLoop loop, bool signalsBlocked, CancellationTokenSource stop)
    {
        if (signalsBlocked)
        {
            // Off the loop thread: cancelling runs callbacks that may wait for the loop.
            return SignalFd.Listen(loop, [Signals.SIGTERM, Signals.SIGINT], _ => ThreadPool.UnsafeQueueUserWorkItem(
                static s => { try { s.Cancel(); } catch (ObjectDisposedException) { } }, stop, preferLocal: false));
        }
        // Started by hand without the mask (tests): threads the runtime made before Main would take the default action, so use .NET's signal thread.
        var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        return new Both(sigterm, sigint);
    }

    private sealed class Both(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }

    private static bool SamePeerUser(ITtrpcConnection connection, ShimLogger log)
    {
        if (connection is not LoopTtrpcConnection loopConnection)
        {
            return false;
        }
        var (_, uid, gid) = loopConnection.Socket.PeerCredentials();
        bool same = uid == Shim.Os.ProcessInfo.EffectiveUid && gid == Shim.Os.ProcessInfo.EffectiveGid;
        if (!same)
        {
            log.Warn("refused connection from another user", ShimLog.Field("uid", uid) + " " + ShimLog.Field("gid", gid));
        }
        return same;
    }

    /// <summary>The peer of a connection for the server's log lines: its pid and uid as of connect (SO_PEERCRED).</summary>
    private static string? DescribePeer(ITtrpcConnection connection)
    {
        if (connection is not LoopTtrpcConnection loopConnection)
        {
            return null;
        }
        var (pid, uid, _) = loopConnection.Socket.PeerCredentials();
        return $"pid {pid}, uid {uid}";
    }

    /// <summary>The shim's log: the bundle's `log` FIFO, which containerd holds the read side of and copies into its own log.</summary>
    private static ShimLogger OpenLog(ShimArgs args)
    {
        var level = args.Debug ? LogLevel.Debug : LogLevel.Info;
        string common = ShimLog.Field("namespace", args.Namespace) + " runtime=io.containerd.runcsharp.v2";
        try
        {
            using var fifo = Fds.Open("log", Fds.O_WRONLY | Fds.O_NONBLOCK);
            Fds.Dup2(fifo, 2);
            return ShimLogger.ToStderr(level, common);
        }
        catch (ErrnoException)
        {
            // no reader (run by hand): log nowhere rather than block
            return ShimLogger.Discard;
        }
    }

    /// <summary>The listening socket our own <c>start</c> passed as fd 3; closed again if the loop cannot watch it.</summary>
    private static LoopListener InheritedListener(IoLoop loop)
    {
        SafeFileHandle? fd3 = new(3, ownsHandle: true);
        try
        {
            var listener = new LoopListener(loop, fd3);
            fd3 = null;
            return listener;
        }
        finally
        {
            fd3?.Dispose();
        }
    }
}
