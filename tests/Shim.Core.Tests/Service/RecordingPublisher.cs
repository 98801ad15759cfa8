using System.Collections.Concurrent;
using Google.Protobuf;
using Shim.Core.Events;

namespace Shim.Core.Tests.Service;

internal sealed class RecordingPublisher : IEventPublisher
{
    public ConcurrentQueue<IMessage> Events { get; } = new();
    public void Publish(IMessage evt) => Events.Enqueue(evt);
    public Task FlushAsync(TimeSpan timeout) => Task.CompletedTask;
}
