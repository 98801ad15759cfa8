using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Core.Stdio;
using Shim.Os.Mounting;
using Shim.Runc;
using static Shim.Ttrpc.Fuzz.Targets.Fuzzing;

namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>
/// Task requests into the real service with live containers (<see cref="LiveFuzzService"/>: a fake
/// runc whose containers and execs are real children): byte 0 picks the method, the rest is its
/// request message, parsed and run by the registered handler as the server would. Create reaches
/// the options, ConfigPath TOML, rootfs mounts (they all fail at their target: the rootfs stays
/// empty, so nothing is ever mounted), stdio URIs and binary:// loggers; Exec the process spec;
/// Start the exec's stdio; Update and Checkpoint their options. Every request must get an answer
/// in time; a malformed one a status other than UNKNOWN or INTERNAL (those belong to what runc or
/// the system refused), and the container c1 must still answer State afterwards.
/// </summary>
internal sealed class ServiceTarget : IAsyncDisposable
{
    /// <summary>The methods byte 0 picks from (Wait blocks by design while its process runs: never sent).</summary>
    public static readonly string[] Methods =
        ["Create", "Exec", "Start", "Update", "Checkpoint", "Kill", "Delete", "State", "Pids", "Pause", "Resume", "CloseIO", "ResizePty", "Stats", "Connect", "Shutdown"];

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);
    private readonly LiveFuzzService _live = new();
    private long _inputs;

    /// <summary>Handler outcomes by method and status, for the test's report.</summary>
    public Dictionary<string, long> Outcomes { get; } = new(StringComparer.Ordinal);

    /// <summary>Requests left out because they would act outside the fixture.</summary>
    public long Screened { get; private set; }

    public static ByteTarget Target(ServiceTarget service) =>
        new("service-live", "src/Shim.Core/Service/*.cs, Options/*.cs, Stdio/StdioUri.cs, ProcessIo*.cs, Processes/*.cs, src/Shim.Os/Mounting/RootfsMounts.cs", Seeds, service.Run);

    /// <summary>A request as this target reads it.</summary>
    public static byte[] Encode(string method, IMessage request) => [(byte)Array.IndexOf(Methods, method), .. request.ToByteArray()];

    public static IEnumerable<(string, byte[])> Seeds()
    {
        string io = LiveFuzzService.IoDir, bundle = LiveFuzzService.BundleOf("c2");
        var runc = new Any { TypeUrl = "containerd.runc.v1.Options", Value = new Containerd.Runc.V1.Options { BinaryName = "runc", IoUid = 1000, IoGid = 1000, CriuWorkPath = io + "/criu" }.ToByteString() };
        var toml = new Any { TypeUrl = "runtimeoptions.v1.Options", Value = new Runtimeoptions.V1.Options { ConfigBody = ByteString.CopyFromUtf8("SystemdCgroup = false\nIoUid = 5\n") }.ToByteString() };
        yield return ("create-plain", Encode("Create", LiveFuzzService.LiveCreate("c2")));
        yield return ("create-fifos", Encode("Create", new CreateTaskRequest { Id = "c2", Bundle = bundle, Stdin = io + "/fifo-in", Stdout = io + "/fifo-out", Stderr = io + "/fifo-err", Options = runc }));
        yield return ("create-file", Encode("Create", new CreateTaskRequest { Id = "c3", Bundle = LiveFuzzService.BundleOf("c3"), Stdout = $"file://{io}/sub/new.log", Stderr = $"file://{io}/sub/new.log", Options = toml }));
        yield return ("create-binary", Encode("Create", new CreateTaskRequest { Id = "c2", Bundle = bundle, Stdout = $"binary://{io}/logger.sh?id=c2&ns=fuzz&flag", Stderr = $"binary://{io}/logger.sh" }));
        yield return ("create-terminal", Encode("Create", new CreateTaskRequest { Id = "c2", Bundle = bundle, Terminal = true, Stdin = io + "/fifo-in", Stdout = $"binary-v2://{io}/logger.sh?a=%2F" }));
        yield return ("create-mounts", Encode("Create", new CreateTaskRequest
        {
            Id = "c3", Bundle = LiveFuzzService.BundleOf("c3"),
            Rootfs =
            {
                new Containerd.Types.Mount { Type = "overlay", Source = "overlay", Target = "merged", Options = { "index=off", $"lowerdir={io}/l1:{io}/l2", $"upperdir={io}/u", $"workdir={io}/w" } },
                new Containerd.Types.Mount { Type = "bind", Source = io, Target = "/x/../y", Options = { "rbind", "ro", "uidmap=0:1000:65536", "gidmap=0:1000:65536" } },
            },
        }));
        yield return ("create-restore", Encode("Create", new CreateTaskRequest { Id = "c2", Bundle = bundle, Checkpoint = io + "/image", ParentCheckpoint = io + "/parent" }));
        yield return ("create-configpath", Encode("Create", new CreateTaskRequest
        {
            Id = "c2", Bundle = bundle,
            Options = new Any { TypeUrl = "runtimeoptions.v1.Options", Value = new Runtimeoptions.V1.Options { ConfigPath = ConfigFile } .ToByteString() },
        }));
        var spec = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFromUtf8("""{"args":["sh"],"cwd":"/","terminal":true}""") };
        yield return ("exec", Encode("Exec", new ExecProcessRequest { Id = "c1", ExecId = "e1", Spec = spec, Stdout = io + "/fifo-out", Stdin = io + "/fifo-in" }));
        yield return ("exec-file", Encode("Exec", new ExecProcessRequest { Id = "c1", ExecId = "e2", Spec = spec, Stdout = $"file://{io}/file.log" }));
        yield return ("start-exec", Encode("Start", new StartRequest { Id = "c1", ExecId = "e1" }));
        yield return ("start", Encode("Start", new StartRequest { Id = "c2" }));
        yield return ("update", Encode("Update", new UpdateTaskRequest
        {
            Id = "c1", Annotations = { ["a"] = "b" },
            Resources = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", Value = ByteString.CopyFromUtf8("""{"memory":{"limit":1048576},"cpu":{"shares":512}}""") },
        }));
        yield return ("checkpoint", Encode("Checkpoint", new CheckpointTaskRequest
        {
            Id = "c1", Path = io + "/image",
            Options = new Any { TypeUrl = "containerd.runc.v1.CheckpointOptions", Value = new Containerd.Runc.V1.CheckpointOptions { Exit = false, WorkPath = io + "/work", EmptyNamespaces = { "network" } }.ToByteString() },
        }));
        yield return ("kill-exec", Encode("Kill", new KillRequest { Id = "c1", ExecId = "e1", Signal = 9 }));
        yield return ("delete-exec", Encode("Delete", new DeleteRequest { Id = "c1", ExecId = "e1" }));
        yield return ("kill", Encode("Kill", new KillRequest { Id = "c2", Signal = 9, All = true }));
        yield return ("delete", Encode("Delete", new DeleteRequest { Id = "c2" }));
        yield return ("pause", Encode("Pause", new PauseRequest { Id = "c1" }));
        yield return ("resume", Encode("Resume", new ResumeRequest { Id = "c1" }));
        yield return ("pids", Encode("Pids", new PidsRequest { Id = "c1" }));
        yield return ("resize", Encode("ResizePty", new ResizePtyRequest { Id = "c1", ExecId = "e1", Width = 80, Height = 24 }));
        yield return ("closeio", Encode("CloseIO", new CloseIORequest { Id = "c1", Stdin = true }));
        yield return ("stats", Encode("Stats", new StatsRequest { Id = "c1" }));
    }

    /// <summary>A CRI runtime options file for ConfigPath seeds (the TOML itself is fuzzed by config-toml).</summary>
    public static string ConfigFile => Path.Combine(LiveFuzzService.IoDir, "runc.toml");

    /// <summary>c1 runs before the first input, as containerd would have it.</summary>
    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        string method = Methods[input[0] % Methods.Length];
        var handler = _live.Registry.Find(TaskService.TaskV2, method, out _) ?? throw new FuzzFailure($"{method} is not registered");
        IMessage request;
        try
        {
            request = handler.Parse(input[1..]);
        }
        catch (InvalidProtocolBufferException)
        {
            return;   // answered INVALID_ARGUMENT by the server before any handler (the frame targets cover it)
        }
        if (Screen(method, request) is { } why)
        {
            Screened++;
            _ = why;
            return;
        }
        Invoke(method, handler, request);
        EnsureC1();
        if (++_inputs % 16 == 0)
        {
            // c2 and c3 free again, so fuzzed Creates get past AlreadyExists
            foreach (string id in (string[])["c2", "c3"])
            {
                Ended(Task.Run(() => _live.Service.KillAsync(new KillRequest { Id = id, Signal = 9 }, CancellationToken.None)), Deadline);
                Ended(Task.Run(() => _live.Service.DeleteAsync(new DeleteRequest { Id = id }, CancellationToken.None)), Deadline);
            }
        }
    }

    private void Invoke(string method, MethodHandler handler, IMessage request)
    {
        using var cancel = new CancellationTokenSource(Deadline);
        var call = Task.Run(() => handler.InvokeAsync(request, new TtrpcCallContext(TaskService.TaskV2, method, [], cancel.Token)).AsTask());
        if (!Ended(call, Deadline + TimeSpan.FromSeconds(5)))
        {
            throw new FuzzFailure($"{method} {Show(request)}: no answer within {Deadline.TotalSeconds} s (hang)");
        }
        if (call.IsCompletedSuccessfully)
        {
            Count(method, "OK");
            return;
        }
        var ex = call.Exception!.GetBaseException();
        bool known = ex is ShimException or RuncException or TtrpcException or OperationCanceledException;
        var (code, message) = StatusMapping.ToStatus(ex);
        Count(method, code.ToString());
        if (!known)
        {
            throw new FuzzFailure($"{method} {Show(request)}: unexpected {ex.GetType().Name}: {ex.Message}", ex);
        }
        Check(code != StatusCode.OK && message.Length > 0, $"{method} {Show(request)}: failed with {code} \"{message}\"");
        if (code is StatusCode.Unknown or StatusCode.Internal && !RefusedOutside(ex))
        {
            throw new FuzzFailure($"{method} {Show(request)}: answered {code} \"{message}\" ({ex.GetType().Name}), not a status that says what was wrong with the request", ex);
        }
    }

    /// <summary>UNKNOWN is right when runc (here the fake) or the kernel refused: the request may be fine.</summary>
    private static bool RefusedOutside(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is RuncException or MountException { BadInput: false })
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Container c1 answers State; when a fuzzed Delete took it, it is made again.</summary>
    private void EnsureC1()
    {
        var state = Task.Run(() => _live.Service.StateAsync(new StateRequest { Id = "c1" }, CancellationToken.None));
        if (!Ended(state, TimeSpan.FromSeconds(5)))
        {
            throw new FuzzFailure("State c1 got no answer within 5 s after the input");
        }
        if (state.IsCompletedSuccessfully)
        {
            if (state.Result.Status != Containerd.Types.Task.Status.Stopped)
            {
                return;
            }
            // a fuzzed Kill stopped it: Execs, Updates and Checkpoints want a running one
            var deleted = Task.Run(() => _live.Service.DeleteAsync(new DeleteRequest { Id = "c1" }, CancellationToken.None));
            if (!Ended(deleted, Deadline))
            {
                throw new FuzzFailure("Delete of the stopped c1 did not finish in time");
            }
        }
        else
        {
            var (code, _) = StatusMapping.ToStatus(state.Exception!.GetBaseException());
            Check(code == StatusCode.NotFound, $"State c1 answered {code} after the input");
        }
        var made = Task.Run(async () =>
        {
            await _live.Service.CreateAsync(LiveFuzzService.LiveCreate("c1"), CancellationToken.None).ConfigureAwait(false);
            await _live.Service.StartAsync(new StartRequest { Id = "c1" }, CancellationToken.None).ConfigureAwait(false);
        });
        if (!Ended(made, Deadline))
        {
            throw new FuzzFailure("making c1 again did not finish in time");
        }
        made.GetAwaiter().GetResult();
    }

    private void Count(string method, string outcome)
    {
        string key = $"{method} {outcome}";
        Outcomes[key] = Outcomes.GetValueOrDefault(key) + 1;
    }

    private static string Show(IMessage request)
    {
        string text = request.ToString() ?? "";
        return text.Length > 600 ? text[..600] + "..." : text;
    }

    /// <summary>Why a request must not run here (it would act outside the fixture), or null.</summary>
    internal static string? Screen(string method, IMessage request) => request switch
    {
        CreateTaskRequest c => ScreenCreate(c),
        ExecProcessRequest e => ScreenStdio(e.Stdin, e.Stdout, e.Stderr),
        CheckpointTaskRequest k => ScreenCheckpoint(k),
        _ => method == "Wait" ? "Wait blocks while its process runs" : null,
    };

    private static string? ScreenCreate(CreateTaskRequest c)
    {
        bool liveBundle = LiveFuzzService.LiveIds.Any(id => c.Bundle == LiveFuzzService.BundleOf(id));
        if (!liveBundle && c.Bundle.Length > 0 && Directory.Exists(c.Bundle))
        {
            return "a bundle outside the fixture";
        }
        foreach (var m in c.Rootfs)
        {
            if (ScreenMount(m) is { } why)
            {
                return why;
            }
        }
        try
        {
            if (!SafeWorkPath(OptionsCodec.Decode(c.Options).CriuWorkPath))
            {
                return "a CRIU work path outside the fixture";
            }
        }
        catch (ShimException)
        {
            // Create fails on the options before anything else
        }
        return ScreenStdio(c.Stdin, c.Stdout, c.Stderr);
    }

    /// <summary>Every mount must fail at its target (the rootfs is empty), after what it would do before: no loop devices, idmapped layers only from the fixture.</summary>
    private static string? ScreenMount(Containerd.Types.Mount m)
    {
        if (m.Options.Contains("loop"))
        {
            return "a loop device";
        }
        try
        {
            string relative = MountTarget.Relative(m.Target);
            if (relative.Split('/', StringSplitOptions.RemoveEmptyEntries).All(part => part is "." or ".."))
            {
                return "a mount on the rootfs itself";
            }
            if (relative.Contains('\0', StringComparison.Ordinal))
            {
                return "a target the kernel would cut at its NUL";
            }
        }
        catch (FormatException)
        {
            return null;   // refused before anything happens
        }
        if (m.Type == "overlay")
        {
            var (index, dirs) = OverlayLowerdirs.Find(m.Options);
            if (index >= 0 && OverlayLowerdirs.CommonParent(dirs) is { } parent && !Under(parent))
            {
                return "idmapped layers outside the fixture";
            }
        }
        return null;
    }

    private static string? ScreenCheckpoint(CheckpointTaskRequest k)
    {
        try
        {
            return SafeWorkPath(CheckpointRequestOptions.Decode(k.Options).WorkPath) ? null : "a CRIU work path outside the fixture";
        }
        catch (ShimException)
        {
            return null;
        }
    }

    private static bool SafeWorkPath(string work)
    {
        if (work.Length == 0)
        {
            return true;   // <bundle>/work/criu-work
        }
        try
        {
            return Under(InitProcess.CheckpointWorkParent(work));
        }
        catch (ShimException)
        {
            return true;   // refused before anything is made
        }
    }

    /// <summary>Only paths in the fixture (or /dev/null) may be opened, created or run.</summary>
    private static string? ScreenStdio(params string[] stdio)
    {
        foreach (string s in stdio)
        {
            if (s.Length == 0)
            {
                continue;
            }
            string path;
            try
            {
                path = StdioUri.Split(s).Path;
            }
            catch (ShimException)
            {
                continue;   // refused before anything is opened
            }
            int nul = path.IndexOf('\0', StringComparison.Ordinal);
            path = nul >= 0 ? path[..nul] : path;
            if (path.Length > 0 && path != "/dev/null" && !(Path.IsPathRooted(path) && Under(path)))
            {
                return $"stdio {s} outside the fixture";
            }
        }
        return null;
    }

    private static bool Under(string path)
    {
        try
        {
            return Path.GetFullPath(path).StartsWith(LiveFuzzService.RootDir + "/", StringComparison.Ordinal);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Makes c1 and starts it.</summary>
    public async Task StartAsync()
    {
        await _live.Service.CreateAsync(LiveFuzzService.LiveCreate("c1"), CancellationToken.None).ConfigureAwait(false);
        await _live.Service.StartAsync(new StartRequest { Id = "c1" }, CancellationToken.None).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _live.DisposeAsync();
}
