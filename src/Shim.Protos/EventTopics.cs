using Google.Protobuf;

namespace Shim.Protos;

/// <summary>
/// Event topics used when publishing task events (containerd <c>core/runtime/events.go</c>;
/// 1.x <c>runtime/events.go</c>). The topic goes in <c>Envelope.topic</c>; the event itself is packed
/// with <see cref="TypeUrls.Pack"/>.
/// </summary>
public static class EventTopics
{
    public const string TaskCreate = "/tasks/create";
    public const string TaskStart = "/tasks/start";
    public const string TaskDelete = "/tasks/delete";
    public const string TaskExit = "/tasks/exit";
    public const string TaskOOM = "/tasks/oom";
    public const string TaskExecAdded = "/tasks/exec-added";
    public const string TaskExecStarted = "/tasks/exec-started";
    public const string TaskPaused = "/tasks/paused";
    public const string TaskResumed = "/tasks/resumed";
    public const string TaskCheckpointed = "/tasks/checkpointed";

    /// <summary>Returns the topic for a task event message.</summary>
    /// <exception cref="ArgumentException">The message is not one of the <c>containerd.events</c> task events.</exception>
    public static string TopicOf(IMessage evt)
    {
        ArgumentNullException.ThrowIfNull(evt);
        return Describe(evt)?.Topic
            ?? throw new ArgumentException($"no event topic for message type {evt.Descriptor.FullName}", nameof(evt));
    }

    /// <summary>A task event's topic and type name; null for any other message.</summary>
    internal static (string Topic, string Name)? Describe(IMessage message) => message switch
    {
        global::Containerd.Events.TaskCreate => (TaskCreate, TypeUrls.TaskCreate),
        global::Containerd.Events.TaskStart => (TaskStart, TypeUrls.TaskStart),
        global::Containerd.Events.TaskDelete => (TaskDelete, TypeUrls.TaskDelete),
        global::Containerd.Events.TaskExit => (TaskExit, TypeUrls.TaskExit),
        global::Containerd.Events.TaskOOM => (TaskOOM, TypeUrls.TaskOOM),
        global::Containerd.Events.TaskExecAdded => (TaskExecAdded, TypeUrls.TaskExecAdded),
        global::Containerd.Events.TaskExecStarted => (TaskExecStarted, TypeUrls.TaskExecStarted),
        global::Containerd.Events.TaskPaused => (TaskPaused, TypeUrls.TaskPaused),
        global::Containerd.Events.TaskResumed => (TaskResumed, TypeUrls.TaskResumed),
        global::Containerd.Events.TaskCheckpointed => (TaskCheckpointed, TypeUrls.TaskCheckpointed),
        _ => null,
    };
}
