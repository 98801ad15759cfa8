using SharpFuzz;

namespace Shim.Ttrpc.Fuzz;

/// <summary>
/// Entry point. Without arguments: the AFL++ target (SharpFuzz out-of-process mode; the input is
/// one connection's bytes). <c>--seeds DIR</c> writes the seed corpus; <c>--replay FILE...</c>
/// runs inputs once each (a crash found by AFL is replayed this way, with the full exception).
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["--seeds", var dir])
        {
            Directory.CreateDirectory(dir);
            foreach (var (name, bytes) in FrameBuilder.Seeds())
            {
                File.WriteAllBytes(Path.Combine(dir, name), bytes);
            }

            return 0;
        }

        if (args is ["--replay", .. var files])
        {
            var replay = new FuzzTarget();
            foreach (string file in files)
            {
                var end = replay.Run(File.ReadAllBytes(file));
                Console.WriteLine($"{file}: ok ({end}, {replay.Rejections} rejected, {replay.Dispatches} dispatched so far)");
            }

            return 0;
        }

        // built on the first input: instrumented code must not run before SharpFuzz maps AFL's shared memory
        FuzzTarget? target = null;
        var buffer = new MemoryStream();
        Fuzzer.OutOfProcess.Run(stream =>
        {
            target ??= new FuzzTarget();
            buffer.SetLength(0);
            stream.CopyTo(buffer);
            target.Run(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        });
        return 0;
    }
}
