namespace Shim.Ttrpc.Fuzz.Targets;

/// <summary>Every target by name: what fuzz/run.sh TARGET and the property tests run.</summary>
internal static class FuzzTargets
{
    /// <summary>The names, the frame decoder's first (fuzz/run.sh's default).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "frames", "server-socket", "client-responses", "service-live",
        .. RequestParserTargets.All.Select(t => t.Name), .. RecoveryParserTargets.All.Select(t => t.Name),
    ];

    /// <summary>
    /// Makes target <paramref name="name"/>. Stateful ones (a server, live containers) are made
    /// here, so AFL's instrumented code runs only once SharpFuzz mapped its shared memory.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "a server or live containers made for AFL live as long as the process; the tests make and dispose their own")]
    public static ByteTarget Create(string name)
    {
        switch (name)
        {
            case "frames":
                var frames = new FuzzTarget();
                return new ByteTarget(name, "src/Shim.Ttrpc/RequestDecoder.cs, FrameHeader.cs; TaskService without containers", FramesSeeds, input => frames.Run(input));
            case "server-socket":
                return SocketTarget.Target(new SocketTarget());
            case "client-responses":
                return ClientTarget.Target;
            case "service-live":
                return ServiceTarget.Target(new ServiceTarget());
            default:
                return RequestParserTargets.All.Concat(RecoveryParserTargets.All).FirstOrDefault(t => t.Name == name)
                    ?? throw new ArgumentException($"no fuzz target {name}; there are: {string.Join(", ", Names)}");
        }
    }

    /// <summary>The seeds of <paramref name="name"/> without making the target (no server, no containers).</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> SeedsOf(string name) => name switch
    {
        "frames" => FramesSeeds(),
        "server-socket" => SocketTarget.Seeds(),
        "client-responses" => ClientTarget.Target.Seeds(),
        "service-live" => ServiceTarget.Seeds(),
        _ => Create(name).Seeds(),
    };

    private static IEnumerable<(string Name, byte[] Bytes)> FramesSeeds() => FrameBuilder.Seeds();
}
