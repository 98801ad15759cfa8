using System.Globalization;
using System.Text.Json.Nodes;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Protos;

namespace Shim.E2E.Tests;

/// <summary>
/// The shim's watchdog on runc calls, set to <see cref="Timeout"/> through RUNCSHARP_RUNC_TIMEOUT
/// in the daemon's environment (containerd hands it to its shims), with a runc wrapper that
/// stalls the calls a test names. create, start, delete and checkpoint may take as long as their
/// hooks or CRIU take (containerd's shim never kills a runc call); a stalled pause is killed.
/// </summary>
public sealed class RuncWatchdogTests : E2ETest, IAsyncLifetime
{
    private const int Timeout = 2;   // seconds
    private const int Stall = 4;     // seconds a stalled call waits before it goes on: twice the watchdog

    private RuncWrapper? _runc;

    // the wrapper is made here, after the prerequisites were checked and right before the daemon starts
    private protected override ContainerdOptions DaemonOptions => new(
        PathFirst: (_runc ??= RuncWrapper.Create(ContainerdLines.Current)).Dir,
        Environment: new Dictionary<string, string> { ["RUNCSHARP_RUNC_TIMEOUT"] = Timeout.ToString(CultureInfo.InvariantCulture) });

    private RuncWrapper Runc => _runc ?? throw new InvalidOperationException("the daemon was not started");

    /// <summary>Every later call of these runc verbs waits <see cref="Stall"/> s first and is recorded.</summary>
    private void StallOn(params string[] verbs) => Runc.Before($$"""
        case "$verb" in
          {{string.Join('|', verbs)}}) echo "$verb" >> "$dir/record"; sleep {{Stall}} ;;
        esac
        """);

    [Fact]
    public async Task Create_start_and_delete_slower_than_the_watchdog_run_to_the_end_and_the_exit_code_is_reported()
    {
        StallOn("create", "start", "delete");

        var run = await CtrAsync(RunArgs("slow", detach: false, "sh", "-c", "echo ran; exit 7"), stdin: null, TimeSpan.FromSeconds(90));

        Log($"wrapper stalled: {string.Join(' ', Runc.Record())}; {run.Describe()}");
        Assert.True(run.ExitCode == 7, run.Describe());
        Assert.Equal("ran\n", run.Stdout);
        // with containerd's shim a second `runc delete --force` comes from its `delete` action, which
        // containerd runs when a shim disconnects (cleanupAfterDeadShim in runtime/v2)
        Assert.Equal(["create", "start", "delete"], Runc.Record().Distinct());
        Assert.DoesNotContain("slow", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("slow", (await CtrAsync("containers", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_checkpoint_and_a_restore_slower_than_the_watchdog_run_to_the_end()
    {
        Prereqs.RequireCriuOrSkip();
        (await CtrAsync(RunArgs("ckpt", detach: true, "sleep", "300"))).EnsureSuccess();
        string image = TempDir("rcs-ckpt-"), work = TempDir("rcs-ckwork-");
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "ckpt", Ct);
        StallOn("checkpoint", "restore");

        // ctr cannot send checkpoint options for our runtime name (see CheckpointTests): over ttrpc
        await CallAsync(shim, "Checkpoint", new CheckpointTaskRequest
        {
            Id = "ckpt",
            Path = image,
            Options = TypeUrls.Pack(new Containerd.Runc.V1.CheckpointOptions { Exit = true, WorkPath = work }),
        }, Empty.Parser);

        Assert.True(File.Exists(Path.Combine(image, "inventory.img")), "CRIU wrote its images");
        var wait = await CallAsync(shim, "Wait", new WaitRequest { Id = "ckpt" }, WaitResponse.Parser);
        Assert.Equal(137u, wait.ExitStatus); // runc checkpoint without --leave-running kills the dumped tree

        // the same shim restores the images as a container of its own: a bundle next to containerd's
        // with the checkpointed container's config (same rootfs folder) and a cgroup of its own
        var spec = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Ctrd.BundleDir(Ns, "ckpt"), "config.json"), Ct))!.AsObject();
        spec["linux"]!["cgroupsPath"] = $"/{Ns}/rst";
        string bundle = Path.Combine(Ctrd.Dir, "bundles", "rst");
        Directory.CreateDirectory(bundle);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), spec.ToJsonString(), Ct);
        await CallAsync(shim, "Create", new CreateTaskRequest { Id = "rst", Bundle = bundle, Checkpoint = image }, CreateTaskResponse.Parser);
        try
        {
            var started = await CallAsync(shim, "Start", new StartRequest { Id = "rst" }, StartResponse.Parser);   // runc restore

            Assert.Equal(["checkpoint", "restore"], Runc.Record());
            var state = await CallAsync(shim, "State", new StateRequest { Id = "rst" }, StateResponse.Parser);
            Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
            Assert.Equal("sleep 300", string.Join(' ', ProcFs.Argv((int)started.Pid) ?? []));
        }
        finally
        {
            // containerd does not know this container: it is ours to remove (a Wait bounded, should the kill not land)
            await shim.StatusOfAsync(shim.TaskApi, "Kill", new KillRequest { Id = "rst", Signal = 9 }, Empty.Parser, Ct);
            using (var bound = CancellationTokenSource.CreateLinkedTokenSource(Ct))
            {
                bound.CancelAfter(TimeSpan.FromSeconds(20));
                try { await shim.StatusOfAsync(shim.TaskApi, "Wait", new WaitRequest { Id = "rst" }, WaitResponse.Parser, bound.Token); }
                catch (OperationCanceledException) { Log("cleanup: rst did not exit within 20 s of SIGKILL"); }
            }
            await shim.StatusOfAsync(shim.TaskApi, "Delete", new DeleteRequest { Id = "rst" }, DeleteResponse.Parser, Ct);
        }
    }

    [Fact]
    public async Task A_pause_that_gets_no_answer_fails_with_the_watchdog_error_and_the_shim_keeps_serving()
    {
        OursOnly("containerd's shim has no watchdog on runc calls: its pause would wait for runc");
        (await CtrAsync(RunArgs("hung", detach: true, "sleep", "300"))).EnsureSuccess();
        // this pause never ends by itself: the wrapper becomes a sleep that outlasts the test's wait
        Runc.Before("""[ "$verb" = pause ] && exec sleep 300""");

        var pause = await CtrAsync(["task", "pause", "hung"], stdin: null, TimeSpan.FromSeconds(60));

        Log(pause.Describe());
        Assert.NotEqual(0, pause.ExitCode);
        Assert.Contains("runc pause", pause.Stderr, StringComparison.Ordinal);
        Assert.Contains($"no answer within {Timeout} s", pause.Stderr, StringComparison.Ordinal);
        Runc.Before("");
        Assert.Contains("RUNNING", await TaskLineAsync("hung"), StringComparison.Ordinal);
        var exec = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "after", "hung", "echo", "still serving");
        Assert.Equal("still serving\n", exec.EnsureSuccess().Stdout);
        (await CtrAsync("task", "pause", "hung")).EnsureSuccess();
        Assert.Contains("PAUSED", await TaskLineAsync("hung"), StringComparison.Ordinal);
        (await CtrAsync("task", "resume", "hung")).EnsureSuccess();
        (await CtrAsync("task", "kill", "-s", "SIGKILL", "hung")).EnsureSuccess();
    }

    public new async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _runc?.Dispose();
    }


    private static Task<TResponse> CallAsync<TRequest, TResponse>(ShimClient shim, string method, TRequest request, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        shim.Client.CallAsync(shim.TaskApi, method, request, parser, TimeSpan.FromSeconds(60), null, Ct);

    private async Task<string> TaskLineAsync(string id) =>
        (await CtrAsync("task", "ls")).EnsureSuccess().Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";
}
