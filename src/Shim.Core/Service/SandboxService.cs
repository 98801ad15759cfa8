using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Containerd.Runtime.Sandbox.V1;
using Google.Protobuf;
using K8s.Cri.V1;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Processes;
using Shim.Core.Sandbox;
using Shim.Os;
using Shim.Os.Namespaces;
using Shim.Protos;
using Shim.Runc;
using Shim.Ttrpc;

namespace Shim.Core.Service;

/// <summary>
/// containerd 2.x's sandbox API (containerd.runtime.sandbox.v1.Sandbox), served beside the task
/// API when a CRI runtime handler has <c>sandboxer = "shim"</c>: the shim is the pod, and a small
/// holder process (<see cref="NamespaceHolder"/>) replaces the pause container. One pod per shim.
/// The calls and their order are containerd's plugins/sandbox/controller.go and
/// internal/cri/server/sandbox_run.go.
/// </summary>
public sealed class SandboxService
{
    /// <summary>The ttrpc service name.</summary>
    public const string Name = "containerd.runtime.sandbox.v1.Sandbox";

    /// <summary>The states SandboxStatus reports, as CRI's sandbox store names them (runtime.PodSandboxState).</summary>
    public const string Ready = "SANDBOX_READY";

    /// <summary>Any state but ready.</summary>
    public const string NotReady = "SANDBOX_NOTREADY";

    private const string PodSandboxConfigName = TypeUrls.PodSandboxConfig;

    private readonly Lock _gate = new();
    private readonly IRuncRunner _runner;
    private readonly ExitRouter _router;
    private readonly ShimLogger _log;
    private readonly TaskService _tasks;
    private PodSandbox? _pod;          // guarded by _gate
    private bool _creating;            // guarded by _gate

    /// <summary>The sandbox service of a shim whose containers <paramref name="tasks"/> serves; it keeps that shim serving while its pod lives.</summary>
    public SandboxService(IRuncRunner runner, ExitRouter router, ShimLogger log, TaskService tasks)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        _runner = runner;
        _router = router;
        _log = log;
        _tasks = tasks;
        tasks.KeepsServing = () => Pod is { State: not PodState.ShutDown };
    }

    /// <summary>The pod, once CreateSandbox was answered.</summary>
    public PodSandbox? Pod
    {
        get
        {
            lock (_gate)
            {
                return _pod;
            }
        }
    }

    /// <summary>Binds every sandbox RPC.</summary>
    public void Register(TtrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Bind(registry, "CreateSandbox", CreateSandboxRequest.Parser, CreateSandboxAsync);
        Bind(registry, "StartSandbox", StartSandboxRequest.Parser, StartSandboxAsync);
        Bind(registry, "Platform", PlatformRequest.Parser, PlatformAsync);
        Bind(registry, "StopSandbox", StopSandboxRequest.Parser, StopSandboxAsync);
        Bind(registry, "WaitSandbox", WaitSandboxRequest.Parser, WaitSandboxAsync);
        Bind(registry, "SandboxStatus", SandboxStatusRequest.Parser, SandboxStatusAsync);
        Bind(registry, "PingSandbox", PingRequest.Parser, PingSandboxAsync);
        // the answer must reach containerd before the shim goes: see ShutdownSandboxAsync
        registry.Register(Name, "ShutdownSandbox", ShutdownSandboxRequest.Parser, (request, context) =>
            TaskService.InContext<ShutdownSandboxRequest, ShutdownSandboxResponse>((r, ct) => ShutdownSandboxAsync(r, ct, context.ConnectionClosed))(request, context));
        Bind(registry, "SandboxMetrics", SandboxMetricsRequest.Parser, SandboxMetricsAsync);
    }

    private static void Bind<TRequest, TResponse>(TtrpcServiceRegistry registry, string method,
        MessageParser<TRequest> parser, Func<TRequest, CancellationToken, Task<TResponse>> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        registry.Register(Name, method, parser, TaskService.InContext(handler));

    /// <summary>CreateSandbox: reads the pod's configuration and writes the files its containers mount.</summary>
    public Task<CreateSandboxResponse> CreateSandboxAsync(CreateSandboxRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ct;
        string operation = $"create sandbox {request.SandboxId}";
        Identifiers.Check("create sandbox", request.SandboxId);
        if (request.BundlePath.Length == 0 || !Path.IsPathRooted(request.BundlePath))
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"{operation}: bundle path \"{request.BundlePath}\" is not absolute");
        }
        if (request.Rootfs.Count > 0)
        {
            // CRI sends none; a pod with a root filesystem of its own is a VM runtime's notion
            throw new ShimException(ErrorKind.InvalidArgument, $"{operation}: a sandbox rootfs ({request.Rootfs.Count} mounts) is not supported: the pod's containers have their own");
        }
        var config = ConfigOf(request, operation);
        lock (_gate)
        {
            if (_pod is not null || _creating)
            {
                string existing = _pod?.Id ?? "another";
                throw new ShimException(ErrorKind.AlreadyExists, existing == request.SandboxId
                    ? $"{operation}: sandbox {request.SandboxId} already exists"
                    : $"{operation}: this shim already serves sandbox {existing}");
            }
            _creating = true;
        }
        try
        {
            PodFiles files;
            try
            {
                files = PodFiles.For(request.BundlePath, request.SandboxId);
            }
            catch (IOException ex)
            {
                throw new ShimException(ErrorKind.InvalidArgument, $"{operation}: {ex.Message}", ex);
            }
            try
            {
                files.Write(config, Environment.MachineName);
            }
            catch
            {
                files.Remove();   // a failed create leaves nothing behind
                throw;
            }
            var pod = new PodSandbox(request.SandboxId, request.BundlePath, request.NetnsPath.Length > 0 ? request.NetnsPath : null, config, files);
            lock (_gate)
            {
                _pod = pod;
            }
            _log.Info("sandbox created", ShimLog.Field("id", pod.Id) + " " + ShimLog.Field("netns", pod.NetworkNamespace ?? "host"));
            return Task.FromResult(new CreateSandboxResponse());
        }
        finally
        {
            lock (_gate)
            {
                _creating = false;
            }
        }
    }

    /// <summary>StartSandbox: starts the holder of the pod's namespaces and answers its pid (which CRI puts in each container's spec).</summary>
    public async Task<StartSandboxResponse> StartSandboxAsync(StartSandboxRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pod = Get(request.SandboxId);
        if (!pod.Move(PodState.Created, PodState.Ready))
        {
            throw new ShimException(ErrorKind.FailedPrecondition, $"start sandbox {pod.Id}: sandbox is {Describe(pod.State)}, not created");
        }
        var spec = new HolderSpec(pod.NetworkNamespace, pod.OwnNamespaces, pod.Config.Hostname, [.. pod.Config.Linux?.Sysctls ?? []]);
        _router.BeginStart();
        int pid = 0;
        try
        {
            var result = await _runner.RunAsync(NamespaceHolder.Arguments(spec), RuncIo.Captured, ct).ConfigureAwait(false);
            if (result.ExitCode != 0 || !int.TryParse(Encoding.ASCII.GetString(result.Stdout).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out pid) || pid <= 0)
            {
                throw new ShimException(ErrorKind.Unknown, $"start sandbox {pod.Id}: holding the pod's namespaces failed: {(result.Stderr.Length > 0 ? result.Stderr : $"exit status {result.ExitCode}")}");
            }
        }
        catch
        {
            _router.EndStart();
            pod.Move(PodState.Ready, PodState.Created);
            throw;
        }
        var now = DateTimeOffset.UtcNow;
        pod.Started(pid, now);
        if (_router.Track(pid, pod) is { } early)
        {
            pod.OnExit(early);   // killed already: WaitSandbox answers at once
        }
        _log.Info("sandbox started", ShimLog.Field("id", pod.Id) + " " + ShimLog.Field("pid", pid));
        return new StartSandboxResponse { Pid = (uint)pid, CreatedAt = Timestamps.From(now) };
    }

    /// <summary>Platform: this machine's, as containerd names it.</summary>
    public Task<PlatformResponse> PlatformAsync(PlatformRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ct;
        Get(request.SandboxId);
        return Task.FromResult(new PlatformResponse { Platform = new Containerd.Types.Platform { Os = "linux", Architecture = Architecture() } });
    }

    /// <summary>StopSandbox: kills the holder (as CRI kills the pause container) and waits for its exit; a stopped pod stays stopped.</summary>
    public async Task<StopSandboxResponse> StopSandboxAsync(StopSandboxRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pod = Get(request.SandboxId);
        await StopAsync(pod, ct).ConfigureAwait(false);
        return new StopSandboxResponse();
    }

    /// <summary>WaitSandbox: answers when the holder exits (CRI then marks the pod NOTREADY).</summary>
    public async Task<WaitSandboxResponse> WaitSandboxAsync(WaitSandboxRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pod = Get(request.SandboxId);
        var exit = await pod.Exited.WaitAsync(ct).ConfigureAwait(false);
        return new WaitSandboxResponse { ExitStatus = (uint)exit.Status, ExitedAt = Timestamps.From(exit.ExitedAt) };
    }

    /// <summary>SandboxStatus: the holder's pid and whether the pod is ready.</summary>
    public Task<SandboxStatusResponse> SandboxStatusAsync(SandboxStatusRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ct;
        var pod = Get(request.SandboxId);
        var response = new SandboxStatusResponse
        {
            SandboxId = pod.Id,
            Pid = (uint)pod.Pid,
            State = pod.State == PodState.Ready ? Ready : NotReady,
            CreatedAt = pod.CreatedAt == default ? Timestamps.ZeroTime : Timestamps.From(pod.CreatedAt),
            ExitedAt = pod.ExitedAt is { } exited ? Timestamps.From(exited) : Timestamps.ZeroTime,
        };
        if (request.Verbose)
        {
            response.Info["netns"] = pod.NetworkNamespace ?? "host";
            response.Info["namespaces"] = pod.OwnNamespaces.ToString();
        }
        return Task.FromResult(response);
    }

    /// <summary>PingSandbox: the pod is known.</summary>
    public Task<PingResponse> PingSandboxAsync(PingRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ct;
        Get(request.SandboxId);
        return Task.FromResult(new PingResponse());
    }

    /// <summary>How long the shim waits, after answering ShutdownSandbox, for containerd to hang up before it goes anyway.</summary>
    internal static readonly TimeSpan ClientGoneGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// ShutdownSandbox: stops the pod if it runs, removes its files, and lets the shim go once no
    /// container is left and the caller has hung up (<paramref name="clientGone"/>; at once when it
    /// cannot fire, at the latest after <see cref="ClientGoneGrace"/>). containerd closes its client
    /// right after the answer (plugins/sandbox/controller.go Shutdown), and a ttrpc Go client that sees
    /// the connection close while the answer waits unread may return ErrClosed instead of it (the
    /// select in client.go dispatch), failing RemovePodSandbox; seen once in about 20 E2E runs under load.
    /// </summary>
    public async Task<ShutdownSandboxResponse> ShutdownSandboxAsync(ShutdownSandboxRequest request, CancellationToken ct, CancellationToken clientGone = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pod = Get(request.SandboxId);
        await StopAsync(pod, ct).ConfigureAwait(false);
        pod.Files.Remove();
        pod.Move(PodState.Stopped, PodState.ShutDown);
        pod.Move(PodState.Created, PodState.ShutDown);
        _log.Info("sandbox shut down", ShimLog.Field("id", pod.Id));
        if (clientGone.CanBeCanceled)
        {
            clientGone.UnsafeRegister(static s => ((TaskService)s!).TryShutdown(), _tasks);
            _ = Task.Delay(ClientGoneGrace, CancellationToken.None).ContinueWith(static (_, s) => ((TaskService)s!).TryShutdown(), _tasks, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
        else
        {
            _tasks.TryShutdown();
        }
        return new ShutdownSandboxResponse();
    }

    /// <summary>SandboxMetrics: not served (containerd 2.1's CRI never asks); said so rather than answered empty.</summary>
    public Task<SandboxMetricsResponse> SandboxMetricsAsync(SandboxMetricsRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = ct;
        var pod = Get(request.SandboxId);
        throw new ShimException(ErrorKind.NotImplemented, $"metrics of sandbox {pod.Id}: not implemented: the pod's containers report their own (Task.Stats)");
    }

    private static async Task StopAsync(PodSandbox pod, CancellationToken ct)
    {
        if (pod.Move(PodState.Created, PodState.Stopped) || pod.State is PodState.Stopped or PodState.ShutDown)
        {
            return;
        }
        // the holder ignores every signal a pid-namespace init may ignore; SIGKILL is the one it takes
        Signals.Kill(pod.Pid, Signals.SIGKILL);
        await pod.Exited.WaitAsync(ct).ConfigureAwait(false);
    }

    private PodSandbox Get(string id)
    {
        if (id.Length == 0)
        {
            throw new ShimException(ErrorKind.InvalidArgument, "sandbox id must not be empty");
        }
        lock (_gate)
        {
            return _pod is { } pod && pod.Id == id
                ? pod
                : throw new ShimException(ErrorKind.NotFound, _pod is null ? $"sandbox {id}: not created" : $"sandbox {id}: not found (this shim serves sandbox {_pod.Id})");
        }
    }

    private static PodSandboxConfig ConfigOf(CreateSandboxRequest request, string operation)
    {
        if (request.Options is null || request.Options.TypeUrl.Length == 0)
        {
            return new PodSandboxConfig();
        }
        if (TypeUrls.NameOf(request.Options.TypeUrl) != PodSandboxConfigName)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"{operation}: options are a {TypeUrls.NameOf(request.Options.TypeUrl)}, not a {PodSandboxConfigName}");
        }
        try
        {
            return PodSandboxConfig.Parser.ParseFrom(request.Options.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"{operation}: malformed {PodSandboxConfigName}: {ex.Message}", ex);
        }
    }

    private static string Describe(PodState state) => state switch
    {
        PodState.Ready => "running",
        PodState.Stopped => "stopped",
        PodState.ShutDown => "shut down",
        _ => "created",
    };

    // GOARCH names, as containerd's platforms package gives them
    private static string Architecture() => RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        _ => RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant(),
    };
}
