using System.Threading.Channels;

namespace Shim.Os;

/// <summary>A queue of every exit reaped since it was created; dispose to stop receiving.</summary>
public sealed class ExitSubscription : IDisposable
{
    private readonly Reaper _owner;
    private readonly Channel<ChildExit> _channel = Channel.CreateUnbounded<ChildExit>(
        new UnboundedChannelOptions { SingleWriter = true, AllowSynchronousContinuations = false });

    internal ExitSubscription(Reaper owner) => _owner = owner;

    /// <summary>The exits, in reap order; completes after Dispose.</summary>
    public ChannelReader<ChildExit> Reader => _channel.Reader;

    /// <summary>Everything queued now, without waiting.</summary>
    public IReadOnlyList<ChildExit> Drain()
    {
        List<ChildExit>? drained = null;
        while (_channel.Reader.TryRead(out var exit))
        {
            (drained ??= []).Add(exit);
        }
        return drained ?? (IReadOnlyList<ChildExit>)[];
    }

    internal void Publish(ChildExit exit) => _channel.Writer.TryWrite(exit);

    /// <summary>Stops delivery and completes the reader.</summary>
    public void Dispose()
    {
        _owner.Unsubscribe(this);
        _channel.Writer.TryComplete();
    }
}
