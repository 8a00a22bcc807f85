-- The CPU-bound work of bench_workers.sh, shared by its pipeline
-- (workers_pipeline.lua) and its floor (workers_floor.lua): FNV-1a over
-- the bytes of text, 32 bits, n times over.
return function(text, n)
  local h = 2166136261
  for _ = 1, n do
    for i = 1, #text do
      h = ((h ~ text:byte(i)) * 16777619) & 0xffffffff
    end
  end
  return h
end
