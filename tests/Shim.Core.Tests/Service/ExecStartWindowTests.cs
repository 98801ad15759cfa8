using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Protos;
using Shim.Os.Terminals;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Service;

/// <summary>
/// Every request that names an exec, sent before its Start, while Start runs `runc exec` (the fake
/// runc holds the call until the test releases it, as containerd's tests do with runc-fp), and after
/// it: each acts the same in each window, or answers for the window it came in. ctr and nerdctl call
/// CloseIO as soon as their stdin ends, which for a short pipe is while runc exec still runs.
/// </summary>
public sealed class ExecStartWindowTests : TaskServiceTestBase
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    public static TheoryData<string> Windows => ["before", "during", "after"];

    [Theory]
    [MemberData(nameof(Windows))]
    public async Task CloseIO_lets_the_exec_see_the_end_of_its_input_whenever_it_comes(string window)
    {
        string stdin = Path.Combine(Bundle, "e1-stdin"), output = Path.Combine(Bundle, "e1-out");
        Fifos.Create(stdin);
        Runc.ExecCommand = ["/bin/sh", "-c", $"cat > {output}"];
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1", stdin: stdin), Ct);
        // the client's end: open read-write, so it neither blocks nor depends on when the shim opens its reader
#pragma warning disable CA2000 // the FileStream owns the handle and is disposed by the using
        using (var client = new FileStream(File.OpenHandle(stdin, FileMode.Open, FileAccess.ReadWrite), FileAccess.ReadWrite, bufferSize: 0))
#pragma warning restore CA2000
        {
            client.Write("hello\n"u8);

            await Around(window, () => Service.CloseIOAsync(new CloseIORequest { Id = "c1", ExecId = "e1", Stdin = true }, Ct));
        }

        var waited = await Service.WaitAsync(Wait(), Ct).WaitAsync(Bound, Ct);
        Assert.Equal(0u, waited.ExitStatus);
        Assert.Equal("hello\n", await File.ReadAllTextAsync(output, Ct));
    }

    [Theory]
    [MemberData(nameof(Windows))]
    public async Task ResizePty_sets_the_terminal_size_whenever_it_comes(string window)
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1", terminal: true), Ct);

        await Around(window, () => Service.ResizePtyAsync(new ResizePtyRequest { Id = "c1", ExecId = "e1", Width = 100, Height = 30 }, Ct));

        Assert.True(Runc.ExecTerminals.TryDequeue(out var slave));
        using (slave)
        {
            Assert.Equal(((ushort)100, (ushort)30), Terminal.GetSize(slave));
        }
    }

    [Fact]
    public async Task Two_resizes_while_runc_exec_runs_leave_the_last_size()
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1", terminal: true), Ct);

        await Around("during", async () =>
        {
            await Service.ResizePtyAsync(new ResizePtyRequest { Id = "c1", ExecId = "e1", Width = 100, Height = 30 }, Ct);
            await Service.ResizePtyAsync(new ResizePtyRequest { Id = "c1", ExecId = "e1", Width = 132, Height = 43 }, Ct);
        });

        Assert.True(Runc.ExecTerminals.TryDequeue(out var slave));
        using (slave)
        {
            Assert.Equal(((ushort)132, (ushort)43), Terminal.GetSize(slave));
        }
    }

    [Theory]
    [InlineData("before", "FailedPrecondition")]
    [InlineData("during", "137")]
    [InlineData("after", "137")]
    public async Task Kill_is_refused_before_start_and_during_start_waits_for_it_and_kills_the_process(string window, string outcome)
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);

        var kill = await Around(window, () => Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 9 }, Ct));

        if (outcome == "FailedPrecondition")
        {
            Assert.Equal(ErrorKind.FailedPrecondition, (await Assert.ThrowsAsync<ShimException>(() => kill)).Kind);
            return;
        }
        await kill;
        Assert.Equal(137u, (await Service.WaitAsync(Wait(), Ct).WaitAsync(Bound, Ct)).ExitStatus);
    }

    [Theory]
    [InlineData("before", TaskStatus.Created)]
    [InlineData("during", TaskStatus.Created)]
    [InlineData("after", TaskStatus.Running)]
    public async Task State_answers_at_once_with_the_state_of_the_window(string window, TaskStatus status)
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);
        StateResponse? state = null;

        await Around(window, async () => state = await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct));

        Assert.Equal(status, state!.Status);
        Assert.Equal(status == TaskStatus.Running, state.Pid > 0);
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct)).Status);
    }

    [Theory]
    [MemberData(nameof(Windows))]
    public async Task Pids_lists_the_container_in_every_window(string window)
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);
        PidsResponse? pids = null;

        await Around(window, async () => pids = await Service.PidsAsync(new PidsRequest { Id = "c1" }, Ct));

        Assert.Contains((uint)Runc.Pids["c1"], pids!.Processes.Select(p => p.Pid));
    }

    [Theory]
    [MemberData(nameof(Windows))]
    public async Task Wait_answers_with_the_exit_whenever_it_was_sent(string window)
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);
        Task<WaitResponse>? wait = null;

        await Around(window, () =>
        {
            wait = Service.WaitAsync(Wait(), Ct);
            return Task.CompletedTask;
        });

        Assert.False(wait!.IsCompleted);
        await Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 9 }, Ct);
        Assert.Equal(137u, (await wait.WaitAsync(Bound, Ct)).ExitStatus);
    }

    [Fact]
    public async Task Delete_before_start_removes_the_exec_and_a_later_start_finds_nothing()
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);

        await Service.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, Ct);

        var start = await Assert.ThrowsAsync<ShimException>(() => Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, Ct));
        Assert.Equal(ErrorKind.NotFound, start.Kind);
        Assert.Empty(Runc.ExecPids);
    }

    [Theory]
    [InlineData("during")]
    [InlineData("after")]
    public async Task Delete_during_or_after_start_is_refused_for_the_running_exec_and_leaves_it_running(string window)
    {
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);

        var delete = await Around(window, () => Service.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, Ct));

        var refused = await Assert.ThrowsAsync<ShimException>(() => delete);
        Assert.Equal(ErrorKind.FailedPrecondition, refused.Kind);
        Assert.Contains("running", refused.Message, StringComparison.Ordinal);
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct)).Status);
        await Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 9 }, Ct);
        await Service.WaitAsync(Wait(), Ct).WaitAsync(Bound, Ct);
        await Service.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, Ct);
    }

    /// <summary>
    /// Sends <paramref name="request"/> in <paramref name="window"/> of e1's Start and returns its task;
    /// the start has succeeded when this returns. During: a request that waits for the start must
    /// still be waiting when runc exec is released.
    /// </summary>
    private async Task<Task> Around(string window, Func<Task> request)
    {
        var startRequest = new StartRequest { Id = "c1", ExecId = "e1" };
        switch (window)
        {
            case "before":
                var before = Observed(request());
                await Service.StartAsync(startRequest, Ct);
                return before;
            case "during":
                Runc.HoldVerb = "exec";
                var start = Service.StartAsync(startRequest, Ct);
                await Runc.HoldEntered.Task.WaitAsync(Bound, Ct);
                var during = Observed(request());
                Runc.Release.SetResult();
                await start.WaitAsync(Bound, Ct);
                // a request that waited for the start ends with it, in success or failure (the test reads which)
                await during.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).WaitAsync(Bound, Ct);
                return during;
            default:
                await Service.StartAsync(startRequest, Ct);
                return Observed(request());
        }
    }

    /// <summary>A request's task whose failure the test reads (a synchronous throw becomes a faulted task).</summary>
    private static Task Observed(Task task)
    {
        _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return task;
    }

    private static WaitRequest Wait() => new() { Id = "c1", ExecId = "e1" };
}
