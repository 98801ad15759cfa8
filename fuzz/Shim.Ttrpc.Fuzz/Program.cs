using SharpFuzz;
using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz;

/// <summary>
/// Entry point. <c>[--target NAME]</c> alone: the AFL++ target NAME (SharpFuzz out-of-process
/// mode; default "frames": one connection's bytes). <c>--seeds DIR [--target NAME]</c> writes its
/// seed corpus; <c>--replay [--target NAME] FILE...</c> runs inputs once each (a crash found by AFL
/// is replayed this way, with the full exception); <c>--list</c> prints the target names.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        string name = "frames";
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--target" && i + 1 < args.Length)
            {
                name = args[++i];
            }
            else
            {
                rest.Add(args[i]);
            }
        }

        if (rest is ["--list"])
        {
            Console.WriteLine(string.Join('\n', FuzzTargets.Names));
            return 0;
        }

        if (rest is ["--seeds", var dir])
        {
            Directory.CreateDirectory(dir);
            foreach (var (seed, bytes) in FuzzTargets.SeedsOf(name))
            {
                File.WriteAllBytes(Path.Combine(dir, seed), bytes);
            }

            return 0;
        }

        if (rest is ["--replay", .. var files])
        {
            var replay = FuzzTargets.Create(name);
            foreach (string file in files)
            {
                replay.Run(File.ReadAllBytes(file));
                Console.WriteLine($"{file}: ok");
            }

            return 0;
        }

        // built on the first input: instrumented code must not run before SharpFuzz maps AFL's shared memory
        ByteTarget? target = null;
        var buffer = new MemoryStream();
        Fuzzer.OutOfProcess.Run(stream =>
        {
            target ??= FuzzTargets.Create(name);
            buffer.SetLength(0);
            stream.CopyTo(buffer);
            target.Run(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        });
        return 0;
    }
}
