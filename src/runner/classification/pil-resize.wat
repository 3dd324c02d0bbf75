;; The two passes of Pillow's 8-bit resize (libImaging/Resample.c, ImagingResampleHorizontal_8bpc
;; and ImagingResampleVertical_8bpc) for RGB pixels, in WebAssembly SIMD: the same int32
;; fixed-point arithmetic as the C (sums from 1 << 21, weights with 22 fractional bits, an
;; arithmetic shift right by 22, clipped to 0..255), so the bytes are Pillow's. pil-resize.ts lays
;; the pixels and coefficients out in this memory and calls these; `npm run generate` assembles this
;; file into pil-resize-wasm.ts.
;;
;; Both passes write whole vectors: up to 15 bytes past a row's end (the next row overwrites them,
;; and the caller leaves room after the last) and read up to 15 bytes past what they use.
(module
  (memory (export "memory") 1)

  ;; sum >> 22, clipped to 0..255, for four lanes.
  (func $clip8 (param $v v128) (result v128)
    (i32x4.min_s
      (i32x4.max_s (i32x4.shr_s (local.get $v) (i32.const 22)) (i32x4.splat (i32.const 0)))
      (i32x4.splat (i32.const 255))))

  ;; Output columns [x0, x0 + outWidth) of rows [first, first + rows) of `src` (srcWidth RGB pixels a
  ;; row; its column 0 is input column colShift). Per output column X: min[X] (first input column),
  ;; count[X] (taps), weights[X * ksize ...] (int32). One pixel at a time, its three channels (and a
  ;; fourth byte that the next pixel overwrites) in the lanes of one vector.
  (func (export "horizontal")
    (param $src i32) (param $srcWidth i32) (param $first i32) (param $rows i32)
    (param $x0 i32) (param $outWidth i32) (param $colShift i32)
    (param $min i32) (param $count i32) (param $weights i32) (param $ksize i32) (param $out i32)
    (local $y i32) (local $xx i32) (local $x i32) (local $t i32) (local $n i32)
    (local $rowIn i32) (local $p i32) (local $w i32) (local $o i32) (local $acc v128) (local $v v128)
    (local.set $o (local.get $out))
    (local.set $y (i32.const 0))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_s (local.get $y) (local.get $rows)))
        (local.set $rowIn
          (i32.add (local.get $src)
            (i32.mul (i32.mul (i32.add (local.get $first) (local.get $y)) (local.get $srcWidth)) (i32.const 3))))
        (local.set $xx (i32.const 0))
        (block $colsDone
          (loop $colLoop
            (br_if $colsDone (i32.ge_s (local.get $xx) (local.get $outWidth)))
            (local.set $x (i32.add (local.get $x0) (local.get $xx)))
            (local.set $n (i32.load (i32.add (local.get $count) (i32.shl (local.get $x) (i32.const 2)))))
            (local.set $p
              (i32.add (local.get $rowIn)
                (i32.mul
                  (i32.sub (i32.load (i32.add (local.get $min) (i32.shl (local.get $x) (i32.const 2)))) (local.get $colShift))
                  (i32.const 3))))
            (local.set $w (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $x) (local.get $ksize)) (i32.const 2))))
            (local.set $acc (i32x4.splat (i32.const 2097152)))
            (local.set $t (i32.const 0))
            (block $tapsDone
              (loop $tapLoop
                (br_if $tapsDone (i32.ge_s (local.get $t) (local.get $n)))
                (local.set $acc
                  (i32x4.add (local.get $acc)
                    (i32x4.mul
                      (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $p))))
                      (i32x4.splat (i32.load (local.get $w))))))
                (local.set $p (i32.add (local.get $p) (i32.const 3)))
                (local.set $w (i32.add (local.get $w) (i32.const 4)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $tapLoop)))
            (local.set $v (i16x8.narrow_i32x4_s (call $clip8 (local.get $acc)) (local.get $acc)))
            (v128.store32_lane 0 (local.get $o) (i8x16.narrow_i16x8_u (local.get $v) (local.get $v)))
            (local.set $o (i32.add (local.get $o) (i32.const 3)))
            (local.set $xx (i32.add (local.get $xx) (i32.const 1)))
            (br $colLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rowLoop))))

  ;; Output rows [y0, y0 + outHeight), each `rowBytes` bytes from byte `colStart` of the input rows
  ;; (`stride` bytes apart; row 0 of `src` is input row rowShift). Per output row Y: min[Y], count[Y],
  ;; weights[Y * ksize ...]. Sixteen bytes at a time, in four vectors of four int32 sums.
  (func (export "vertical")
    (param $src i32) (param $stride i32) (param $y0 i32) (param $outHeight i32) (param $rowShift i32)
    (param $colStart i32) (param $rowBytes i32)
    (param $min i32) (param $count i32) (param $weights i32) (param $ksize i32) (param $out i32)
    (local $yy i32) (local $y i32) (local $i i32) (local $t i32) (local $n i32)
    (local $base i32) (local $p i32) (local $w i32) (local $wk i32) (local $o i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $px v128) (local $lo v128) (local $hi v128) (local $ws v128)
    (local.set $yy (i32.const 0))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_s (local.get $yy) (local.get $outHeight)))
        (local.set $y (i32.add (local.get $y0) (local.get $yy)))
        (local.set $n (i32.load (i32.add (local.get $count) (i32.shl (local.get $y) (i32.const 2)))))
        (local.set $base
          (i32.add (i32.add (local.get $src) (local.get $colStart))
            (i32.mul
              (i32.sub (i32.load (i32.add (local.get $min) (i32.shl (local.get $y) (i32.const 2)))) (local.get $rowShift))
              (local.get $stride))))
        (local.set $wk (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $y) (local.get $ksize)) (i32.const 2))))
        (local.set $o (i32.add (local.get $out) (i32.mul (local.get $yy) (local.get $rowBytes))))
        (local.set $i (i32.const 0))
        (block $chunksDone
          (loop $chunkLoop
            (br_if $chunksDone (i32.ge_s (local.get $i) (local.get $rowBytes)))
            (local.set $a0 (i32x4.splat (i32.const 2097152)))
            (local.set $a1 (local.get $a0))
            (local.set $a2 (local.get $a0))
            (local.set $a3 (local.get $a0))
            (local.set $p (i32.add (local.get $base) (local.get $i)))
            (local.set $w (local.get $wk))
            (local.set $t (i32.const 0))
            (block $tapsDone
              (loop $tapLoop
                (br_if $tapsDone (i32.ge_s (local.get $t) (local.get $n)))
                (local.set $ws (i32x4.splat (i32.load (local.get $w))))
                (local.set $px (v128.load (local.get $p)))
                (local.set $lo (i16x8.extend_low_i8x16_u (local.get $px)))
                (local.set $hi (i16x8.extend_high_i8x16_u (local.get $px)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $ws))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $ws))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $ws))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $ws))))
                (local.set $p (i32.add (local.get $p) (local.get $stride)))
                (local.set $w (i32.add (local.get $w) (i32.const 4)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $tapLoop)))
            (v128.store (i32.add (local.get $o) (local.get $i))
              (i8x16.narrow_i16x8_u
                (i16x8.narrow_i32x4_s (call $clip8 (local.get $a0)) (call $clip8 (local.get $a1)))
                (i16x8.narrow_i32x4_s (call $clip8 (local.get $a2)) (call $clip8 (local.get $a3)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $chunkLoop)))
        (local.set $yy (i32.add (local.get $yy) (i32.const 1)))
        (br $rowLoop)))))
