using System.Globalization;
using Containerd.Events;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Protos;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Service;

/// <summary>
/// A start that throws at each of its steps (the plan's probe throws before the step) holds
/// nothing afterwards: no start keeps unknown pids' exits, no exit waits in the router, the
/// process's Wait answers (after the exit of what the start had started, which is killed), no event
/// of the failed start goes out, the process can be deleted, and the container's later exits are
/// still reported (an exec counted live for ever would hold init's exit).
/// </summary>
public sealed class StartFailureTests : TaskServiceTestBase
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "the test's own failure, always made with the step it is injected before")]
    private sealed class InjectedFailure(StartStep step) : Exception($"injected failure before {step}");

    public static TheoryData<string> Steps => [.. Enum.GetNames<StartStep>()];

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task An_exec_start_failing_at_each_step_holds_nothing_loses_no_exit_and_can_be_deleted(string step)
    {
        var failAt = Enum.Parse<StartStep>(step);
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);
        var container = Service.ContainerFor("c1");
        var exec = container.GetExec("e1");
        ChildProcess? child = null;
        var plan = Plan(container, Path.Combine(Bundle, "e1.pid"), failAt, started => child = started) with { RunningFrom = ExecState.Created };

        await Assert.ThrowsAsync<InjectedFailure>(() => ProcessStarter.StartAsync(exec, plan, Ct));

        Assert.Equal(0, Router.StartsInFlight);
        Assert.Equal(0, Router.Counts.Unclaimed);
        await exec.Exited.WaitAsync(Bound, Ct);                      // Wait answers
        Assert.Equal(TaskStatus.Created, exec.State.Status);         // CREATED (its start failed), as containerd's shim
        await KilledIfTracked(failAt, child);
        await exec.DeleteAsync(Ct);
        Assert.DoesNotContain(Events.Events, e => e is TaskExecStarted || (e is TaskExit x && x.Id == "e1"));

        // nothing of the failed exec is left to hold init's exit
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        Assert.Equal(137u, (await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(Bound, Ct)).ExitStatus);
        Assert.Equal(["c1"], Events.Events.OfType<TaskExit>().Select(e => e.Id));
        Assert.Equal(0, Router.Counts.Unclaimed);
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task A_create_failing_at_each_step_holds_nothing_loses_no_exit_and_can_be_deleted(string step)
    {
        var failAt = Enum.Parse<StartStep>(step);
        var runc = new Shim.Runc.RuncClient(new Shim.Runc.RuncConfig("/bin/false", "/nonexistent", "/dev/null"), Runc);
        var init = new InitProcess("c2", new StdioPaths("", "", "", false), runc, new ExitSequencer(new Shim.Core.Events.TaskEvents(Events)));
        var container = new Container("c2", Bundle, rootfsMounted: false, sharesPidNamespace: false, init) { Stdio = Stdio.TestStdio.Context };
        ChildProcess? child = null;
        var plan = Plan(container, Path.Combine(Bundle, "c2.pid"), failAt, started => child = started) with
        {
            Announce = events => events.Created(new CreateTaskRequest { Id = "c2", Bundle = Bundle }, init.Pid),
        };

        await Assert.ThrowsAsync<InjectedFailure>(() => ProcessStarter.StartAsync(init, plan, Ct));

        Assert.Equal(0, Router.StartsInFlight);
        Assert.Equal(0, Router.Counts.Unclaimed);
        await KilledIfTracked(failAt, child);
        if (failAt > StartStep.ReadPid)
        {
            await init.Exited.WaitAsync(Bound, Ct);   // its exit was seen, and told to nobody
        }
        await init.DeleteAsync(Ct);
        Assert.Same(InitState.Deleted, init.State);
        Assert.DoesNotContain(Events.Events, e => e is TaskCreate || e is TaskExit);
    }

    [Fact]
    public async Task A_start_that_succeeds_through_the_same_plan_publishes_its_event_and_reports_its_exit()
    {
        // the table's plan is a real start when nothing is injected
        await RunningContainerAsync();
        await Service.ExecAsync(ExecRequest("e1"), Ct);
        var container = Service.ContainerFor("c1");
        var exec = container.GetExec("e1");
        ChildProcess? child = null;
        var plan = Plan(container, Path.Combine(Bundle, "e1.pid"), failAt: null, started => child = started) with { RunningFrom = ExecState.Created };

        await ProcessStarter.StartAsync(exec, plan, Ct);

        Assert.Same(ExecState.Running, exec.State);
        Signals.Kill(child!.Pid, Signals.SIGKILL);
        await exec.Exited.WaitAsync(Bound, Ct);
        Assert.Equal(["TaskExecStarted", "TaskExit"], Events.Events.Where(e => e is TaskExecStarted or TaskExit).Select(e => e.Descriptor.Name));
    }

    /// <summary>After ReadPid the start had a pid: the failed start killed that process; before, it made none (or, failing before ReadPid, one whose pid it never learnt, which the test ends).</summary>
    private static async Task KilledIfTracked(StartStep failAt, ChildProcess? child)
    {
        if (child is null)
        {
            Assert.True(failAt <= StartStep.RunRunc, "runc ran, so a process was started");
            return;
        }
        if (failAt == StartStep.ReadPid)
        {
            Signals.Kill(child.Pid, Signals.SIGKILL); // ReadPid: the shim never learnt this pid, so nobody can kill it but the test
        }
        var exit = await child.Exited.WaitAsync(Bound, Ct);
        Assert.Equal(128 + Signals.SIGKILL, exit.Status);
    }

    /// <summary>A start plan whose "runc" starts a `sleep` child (reaped by the one reaper) and writes its pid; the probe throws before <paramref name="failAt"/>.</summary>
    private StartPlan Plan(Container container, string pidFile, StartStep? failAt, Action<ChildProcess> started) =>
        new(Router, pidFile, 0, 0, "unit", async (io, token) =>
        {
            var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
            Runc.ExecPids.Enqueue(child.Pid); // killed after the test whatever happens
            started(child);
            await File.WriteAllTextAsync(pidFile, child.Pid.ToString(CultureInfo.InvariantCulture), token);
        })
        {
            Stdio = container.Stdio,
            Probe = step =>
            {
                if (step == failAt)
                {
                    throw new InjectedFailure(step);
                }
            },
        };
}
