using Google.Protobuf.WellKnownTypes;

namespace Shim.Protos;

/// <summary>
/// Timestamp helpers.
/// </summary>
/// <remarks>
/// containerd 1.6 generates its shim API with gogo <c>stdtime, nullable=false</c>: <c>exited_at</c> is a
/// plain Go <c>time.Time</c>, always encoded, and "not exited" is Go's zero time
/// (0001-01-01T00:00:00Z, i.e. seconds = -62135596800). containerd 2.x uses nullable timestamps, where an
/// absent field would read back as 1970-01-01 via <c>AsTime()</c>. To look the same to every version we
/// always send <c>exited_at</c> and use <see cref="ZeroTime"/> for "not exited" (PROTOCOL.md §8.2).
/// </remarks>
public static class Timestamps
{
    /// <summary>Unix seconds of Go's zero <c>time.Time</c> (0001-01-01T00:00:00Z).</summary>
    public const long GoZeroSeconds = -62135596800;

    /// <summary>
    /// A new Timestamp equal to Go's zero time. A fresh instance is returned each time because protobuf
    /// messages are mutable.
    /// </summary>
    public static Timestamp ZeroTime => new() { Seconds = GoZeroSeconds, Nanos = 0 };

    /// <summary>Converts a <see cref="DateTimeOffset"/> (any offset) to a Timestamp.</summary>
    public static Timestamp From(DateTimeOffset time) => Timestamp.FromDateTimeOffset(time);

    /// <summary>The current time as a Timestamp.</summary>
    public static Timestamp Now() => Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);

    /// <summary>
    /// True for "no time": null, Go's zero time, or the protobuf zero value (Unix epoch with
    /// seconds = nanos = 0, which is what an absent field decodes to).
    /// </summary>
    public static bool IsZero(Timestamp? ts) =>
        ts is null
        || (ts.Nanos == 0 && (ts.Seconds == GoZeroSeconds || ts.Seconds == 0));
}
