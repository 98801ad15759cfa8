using Google.Protobuf;

namespace Shim.Core.Events;

/// <summary>Sends task events to containerd, in the order they were published.</summary>
public interface IEventPublisher
{
    /// <summary>Queues one event (TaskCreate, TaskExit...); never blocks and never throws.</summary>
    void Publish(IMessage evt);

    /// <summary>Waits until everything queued so far was delivered, or the timeout passes.</summary>
    Task FlushAsync(TimeSpan timeout);
}
