using Shim.Core.Processes;
using Shim.Os;

namespace Shim.Core.Tests.Processes;

public class ExitRouterTests
{
    private sealed class Recorder : IExitTarget
    {
        public List<ChildExit> Exits { get; } = [];
        public void OnExit(ChildExit exit) => Exits.Add(exit);
    }

    private static ChildExit Exit(int pid, int status = 0) => new(pid, status, DateTimeOffset.UnixEpoch);

    [Fact]
    public void A_tracked_pid_gets_its_exit_once()
    {
        var router = new ExitRouter();
        var target = new Recorder();
        router.BeginStart();
        Assert.Null(router.Track(100, target));
        router.Dispatch(Exit(100, 3));
        router.Dispatch(Exit(100, 4)); // a recycled pid later is not this process
        Assert.Equal([Exit(100, 3)], target.Exits);
    }

    [Fact]
    public void An_exit_before_the_pid_is_known_is_handed_back_by_track()
    {
        var router = new ExitRouter();
        var target = new Recorder();
        router.BeginStart();
        router.Dispatch(Exit(200, 7));
        Assert.Equal(Exit(200, 7), router.Track(200, target));
        Assert.Empty(target.Exits);
    }

    [Fact]
    public void Exits_of_unknown_pids_are_not_kept_when_no_start_is_in_flight()
    {
        var router = new ExitRouter();
        router.Dispatch(Exit(300));
        router.BeginStart();
        Assert.Null(router.Track(300, new Recorder()));
    }

    [Fact]
    public void A_failed_start_releases_the_pinned_exits()
    {
        var router = new ExitRouter();
        router.BeginStart();
        router.Dispatch(Exit(400));
        router.EndStart();
        router.BeginStart();
        Assert.Null(router.Track(400, new Recorder()));
    }

    [Fact]
    public void A_forgotten_pid_gets_nothing()
    {
        var router = new ExitRouter();
        var target = new Recorder();
        router.BeginStart();
        router.Track(500, target);
        router.Forget(500);
        router.Dispatch(Exit(500));
        Assert.Empty(target.Exits);
    }
}

public class ExitRecordTests
{
    [Fact]
    public void An_exit_record_round_trips_status_and_time()
    {
        var dir = Directory.CreateTempSubdirectory("rcs-exit-").FullName;
        try
        {
            var at = new DateTimeOffset(2026, 11, 29, 5, 0, 0, TimeSpan.Zero).AddTicks(1234567);
            Assert.Null(ExitRecord.Read(dir));
            ExitRecord.Write(dir, 42, at);
            Assert.Equal((42, at), ExitRecord.Read(dir));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
