using Shim.Core.Stdio;

namespace Shim.Core.Tests.Stdio;

/// <summary>The one reusable wait behind the output waits: a delay, cut short by pokes, never below its minimum.</summary>
public sealed class ProgressWaiterTests
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    [Fact]
    public void A_wait_nobody_pokes_ends_at_its_delay()
    {
        var clock = new ManualClock();
        using var waiter = new ProgressWaiter(clock);
        var wait = waiter.WaitAsync(32 * Ms, 2 * Ms).AsTask();

        clock.Advance(31 * Ms);
        Assert.False(wait.IsCompleted);
        clock.Advance(Ms);
        Assert.True(wait.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_poke_ends_the_wait_at_its_minimum_not_before()
    {
        var clock = new ManualClock();
        using var waiter = new ProgressWaiter(clock);
        var wait = waiter.WaitAsync(32 * Ms, 2 * Ms).AsTask();

        waiter.Poke();
        clock.Advance(Ms);
        Assert.False(wait.IsCompleted);
        clock.Advance(Ms);
        Assert.True(wait.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_poke_after_the_minimum_ends_the_wait_at_once()
    {
        var clock = new ManualClock();
        using var waiter = new ProgressWaiter(clock);
        var wait = waiter.WaitAsync(32 * Ms, 2 * Ms).AsTask();
        clock.Advance(10 * Ms);
        Assert.False(wait.IsCompleted);

        waiter.Poke();
        clock.Advance(TimeSpan.Zero);
        Assert.True(wait.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_poke_between_two_waits_is_not_lost_and_counts_once()
    {
        var clock = new ManualClock();
        using var waiter = new ProgressWaiter(clock);
        var first = waiter.WaitAsync(32 * Ms, 2 * Ms).AsTask();
        clock.Advance(32 * Ms);
        Assert.True(first.IsCompletedSuccessfully);

        waiter.Poke();   // progress while the owner is busy looking
        var second = waiter.WaitAsync(32 * Ms, 2 * Ms).AsTask();
        clock.Advance(2 * Ms);
        Assert.True(second.IsCompletedSuccessfully);

        var third = waiter.WaitAsync(32 * Ms, 2 * Ms).AsTask();   // the poke was answered: a full wait again
        clock.Advance(31 * Ms);
        Assert.False(third.IsCompleted);
        clock.Advance(Ms);
        Assert.True(third.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_wait_for_a_fraction_of_a_millisecond_lasts_a_whole_one_as_timers_fire()
    {
        var clock = new ManualClock();
        using var waiter = new ProgressWaiter(clock);
        var wait = waiter.WaitAsync(TimeSpan.FromMicroseconds(300), TimeSpan.Zero).AsTask();

        clock.Advance(TimeSpan.FromMicroseconds(500));
        Assert.False(wait.IsCompleted);
        clock.Advance(TimeSpan.FromMicroseconds(500));
        Assert.True(wait.IsCompletedSuccessfully);
    }

    [Fact]
    public void Waiting_again_rearms_one_timer()
    {
        var clock = new ManualClock();
        using var waiter = new ProgressWaiter(clock);
        for (int i = 0; i < 100; i++)
        {
            var wait = waiter.WaitAsync(Ms, TimeSpan.Zero).AsTask();
            clock.Advance(Ms);
            Assert.True(wait.IsCompletedSuccessfully);
        }
        Assert.Equal(100, clock.Fired);
        Assert.Equal(0, clock.Armed);
    }
}
