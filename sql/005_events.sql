-- Reserved for the events work; replaced by its real content.
select 1;
