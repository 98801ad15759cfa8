using Shim.Core.Memory;

namespace Shim.Core.Tests.Memory;

public class IdleTrimmerTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Late = TimeSpan.FromSeconds(25);

    /// <summary>A clock the test moves, with one timer that fires only when the test says so.</summary>
    private sealed class ManualTime : TimeProvider
    {
        public TimeSpan Now { get; set; }

        public ManualTimer? Timer { get; private set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Now.Ticks;

        public void Advance(TimeSpan by) => Now += by;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Timer = new ManualTimer(this, callback, state);
            Timer.Change(dueTime, period);
            return Timer;
        }
    }

    private sealed class ManualTimer(ManualTime time, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan? _dueAt;

        public bool Armed => _dueAt is not null;

        /// <summary>How far from now the timer is due.</summary>
        public TimeSpan Due => _dueAt!.Value - time.Now;

        public int Arms { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            _dueAt = dueTime == Timeout.InfiniteTimeSpan ? null : time.Now + dueTime;
            if (Armed)
            {
                Arms++;
            }
            return true;
        }

        /// <summary>Moves the clock to the due time and runs the callback.</summary>
        public void Fire()
        {
            Assert.True(Armed, "the timer fired while not armed");
            time.Now = _dueAt!.Value;
            _dueAt = null;
            callback(state);
        }

        public void Dispose() => _dueAt = null;

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public void Nothing_is_scheduled_before_any_activity()
    {
        var time = new ManualTime();
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => { }, time);
        Assert.False(time.Timer!.Armed);
    }

    [Fact]
    public void A_quiet_period_after_activity_trims_once_and_then_sleeps()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => trims++, time);
        trimmer.Touch();
        time.Timer!.Fire();
        Assert.Equal(1, trims);
        Assert.Equal(1, trimmer.Trims);
        Assert.False(time.Timer.Armed); // an idle shim is not woken again
    }

    [Fact]
    public void Calls_during_the_quiet_period_postpone_the_trim_to_a_quiet_period_after_the_last()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => trims++, time);
        trimmer.Touch();
        time.Advance(TimeSpan.FromMilliseconds(700));
        trimmer.Touch();
        trimmer.Touch();
        Assert.Equal(1, time.Timer!.Arms); // one arm per burst, not one per call
        time.Timer.Fire();                 // 1 s after the first call, 300 ms after the last
        Assert.Equal(0, trims);
        Assert.Equal(TimeSpan.FromMilliseconds(700), time.Timer.Due);
        time.Timer.Fire();
        Assert.Equal(1, trims);
    }

    [Fact]
    public void Activity_after_a_trim_arms_a_new_one()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => trims++, time);
        trimmer.Touch();
        time.Timer!.Fire();
        trimmer.Touch();
        Assert.True(time.Timer.Armed);
        time.Timer.Fire();
        Assert.Equal(2, trims);
    }

    [Fact]
    public void A_failing_trim_is_logged_and_the_next_burst_still_trims()
    {
        var time = new ManualTime();
        int calls = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => { calls++; throw new InvalidOperationException("boom"); }, time);
        trimmer.Touch();
        time.Timer!.Fire();
        trimmer.Touch();
        time.Timer.Fire();
        Assert.Equal(2, calls);
        Assert.Equal(0, trimmer.Trims);
    }

    [Fact]
    public void A_late_trim_follows_the_first_when_the_shim_stays_quiet()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Late, () => trims++, time);
        trimmer.Touch();
        time.Timer!.Fire();
        Assert.Equal(1, trims);
        Assert.Equal(Late - Quiet, time.Timer.Due);
        time.Timer.Fire();
        Assert.Equal(2, trims);
        Assert.False(time.Timer.Armed);
    }

    [Fact]
    public void Activity_while_waiting_for_the_late_trim_gets_its_own_quiet_trim_first()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Late, () => trims++, time);
        trimmer.Touch();
        time.Timer!.Fire();
        time.Advance(TimeSpan.FromSeconds(5));
        trimmer.Touch();
        Assert.Equal(Quiet, time.Timer.Due); // not the 19 s left of the late wait
        time.Timer.Fire();
        Assert.Equal(2, trims);
        Assert.Equal(Late - Quiet, time.Timer.Due);
        time.Timer.Fire();
        Assert.Equal(3, trims);
        Assert.False(time.Timer.Armed);
    }

    [Fact]
    public void The_first_burst_trims_however_little_it_allocated()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => trims++, time, () => 10, minAllocated: 1000);
        trimmer.Touch();
        time.Timer!.Fire();
        Assert.Equal(1, trims);
    }

    [Fact]
    public void Calls_that_allocated_little_since_the_last_trim_arm_no_timer()
    {
        var time = new ManualTime();
        long allocated = 0;
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => trims++, time, () => allocated, minAllocated: 1000);
        trimmer.Touch();
        time.Timer!.Fire();
        for (int probe = 0; probe < 3; probe++)
        {
            time.Advance(TimeSpan.FromSeconds(2));
            allocated += 300;
            trimmer.Touch();
            Assert.False(time.Timer.Armed); // 900 bytes since the trim: no wake-up for them
        }
        Assert.Equal(1, trims);
    }

    [Fact]
    public void The_call_that_crosses_the_allocation_threshold_arms_the_next_quiet_trim()
    {
        var time = new ManualTime();
        long allocated = 0;
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Quiet, () => trims++, time, () => allocated, minAllocated: 1000);
        trimmer.Touch();
        time.Timer!.Fire();
        allocated += 600;
        trimmer.Touch();
        allocated += 600;
        trimmer.Touch();
        Assert.True(time.Timer.Armed);
        Assert.Equal(Quiet, time.Timer.Due);
        time.Timer.Fire();
        Assert.Equal(2, trims);
        allocated += 600;
        trimmer.Touch();                    // counted from the second trim again
        Assert.False(time.Timer.Armed);
    }

    [Fact]
    public void Small_calls_after_the_quiet_trim_cancel_the_late_one()
    {
        var time = new ManualTime();
        long allocated = 0;
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Late, () => trims++, time, () => allocated, minAllocated: 1000);
        trimmer.Touch();
        time.Timer!.Fire();                 // the quiet trim; the late one is armed
        time.Advance(TimeSpan.FromSeconds(2));
        allocated += 100;
        trimmer.Touch();                    // a probe: too small to arm a trim
        time.Timer.Fire();
        Assert.Equal(1, trims);
        Assert.False(time.Timer.Armed);
    }

    [Fact]
    public void Without_calls_after_the_quiet_trim_the_late_trim_still_runs()
    {
        var time = new ManualTime();
        int trims = 0;
        using var trimmer = new IdleTrimmer(Quiet, Late, () => trims++, time, () => 0, minAllocated: 1000);
        trimmer.Touch();
        time.Timer!.Fire();
        time.Timer.Fire();
        Assert.Equal(2, trims);
        Assert.False(time.Timer.Armed);
    }
}
