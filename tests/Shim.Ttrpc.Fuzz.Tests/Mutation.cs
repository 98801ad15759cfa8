namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>A byte-level change to a valid input: bit flips, interesting bytes, cuts, inserts, duplicated ranges, overlong varints.</summary>
internal readonly record struct Mutation(int Kind, int A, int B, byte[] Bytes)
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x20, 0x2A];

    public static byte[] ApplyAll(byte[] data, Mutation[] mutations)
    {
        foreach (var m in mutations)
        {
            data = m.Apply(data);
        }

        return data;
    }

    private byte[] Apply(byte[] data)
    {
        int len = data.Length;
        switch (Kind)
        {
            case 0 when len > 0: // flip one bit
                {
                    var copy = (byte[])data.Clone();
                    copy[A % len] ^= (byte)(1 << (B & 7));
                    return copy;
                }

            case 1 when len > 0: // an interesting byte (tags, lengths, varint edges)
                {
                    var copy = (byte[])data.Clone();
                    copy[A % len] = Interesting[B % Interesting.Length];
                    return copy;
                }

            case 2: // truncate
                return data[..(A % (len + 1))];
            case 3: // insert random bytes
                {
                    int at = A % (len + 1);
                    return [.. data.AsSpan(0, at), .. Bytes, .. data.AsSpan(at)];
                }

            case 4 when len > 0: // delete a range
                {
                    int at = A % len, count = Math.Min(len - at, 1 + (B % 16));
                    return [.. data.AsSpan(0, at), .. data.AsSpan(at + count)];
                }

            case 5 when len > 0: // duplicate a range at the end (repeated fields, second frames)
                {
                    int at = A % len, count = Math.Min(len - at, 1 + (B % 64));
                    return [.. data, .. data.AsSpan(at, count)];
                }

            case 6: // an overlong varint (ten 0xFF bytes)
                {
                    int at = A % (len + 1);
                    return [.. data.AsSpan(0, at), .. Enumerable.Repeat((byte)0xFF, 1 + (B % 10)), .. data.AsSpan(at)];
                }

            case 7 when len > 0: // overwrite with random bytes
                {
                    var copy = (byte[])data.Clone();
                    int at = A % len;
                    Bytes.AsSpan(0, Math.Min(Bytes.Length, len - at)).CopyTo(copy.AsSpan(at));
                    return copy;
                }

            default: // swap two bytes
                if (len < 2)
                {
                    return data;
                }

                {
                    var copy = (byte[])data.Clone();
                    (copy[A % len], copy[B % len]) = (copy[B % len], copy[A % len]);
                    return copy;
                }
        }
    }
}
