using Shim.Core.Events;

namespace Shim.Core.Tests.Events;

public class EventBacklogTests
{
    private static EventBacklog<string> Queue(int capacity) => new(capacity, e => e.StartsWith("exit", StringComparison.Ordinal));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Events_come_out_in_order_and_stay_until_delivered()
    {
        var q = Queue(10);
        q.Enqueue("a");
        q.Enqueue("b");
        Assert.Equal("a", await q.PeekAsync(Ct));
        Assert.Equal("a", await q.PeekAsync(Ct)); // a failed delivery is retried with the same event
        q.Remove("a");
        Assert.Equal("b", await q.PeekAsync(Ct));
    }

    [Fact]
    public void A_full_queue_sheds_the_oldest_non_critical_event_first()
    {
        var q = Queue(3);
        q.Enqueue("exit-1");
        q.Enqueue("start-1");
        q.Enqueue("exit-2");
        var (shed, victim) = q.Enqueue("start-2");
        Assert.True(shed);
        Assert.Equal("start-1", victim);
        Assert.Equal(1, q.Dropped);
        Assert.Equal(3, q.Count);
    }

    [Fact]
    public void Only_a_queue_of_critical_events_sheds_a_critical_one()
    {
        var q = Queue(2);
        q.Enqueue("exit-1");
        q.Enqueue("exit-2");
        Assert.Equal((true, "exit-1"), q.Enqueue("exit-3"));
    }

    [Fact]
    public async Task Peek_waits_for_an_event()
    {
        var q = Queue(4);
        var peek = q.PeekAsync(Ct);
        Assert.False(peek.IsCompleted);
        q.Enqueue("late");
        Assert.Equal("late", await peek.WaitAsync(TimeSpan.FromSeconds(5), Ct));
    }
}
